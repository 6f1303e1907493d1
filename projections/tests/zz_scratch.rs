#[test]
fn scratch_decode_speed() {
    let h = domain::sample::history(5000, 100_000, 73);
    let rows: Vec<(String, serde_json::Value)> = h
        .iter()
        .map(|e| {
            (
                e.event.type_name().to_owned(),
                domain::stored::to_payload(&e.event).unwrap(),
            )
        })
        .collect();
    let t = std::time::Instant::now();
    for (ty, p) in &rows {
        let _e: domain::AccountEvent = domain::stored::from_payload(ty, "1", p.clone()).unwrap();
    }
    eprintln!("decode 100k: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    for _ in 0..10000 {
        let _ = domain::values::Mobile::parse("+8613712345678").unwrap();
    }
    eprintln!("10k mobile parses: {:?}", t.elapsed());
}
