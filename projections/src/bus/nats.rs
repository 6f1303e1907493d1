//! The bus on NATS JetStream (async-nats): streams created or updated at start with file storage
//! and the configured replicas, publishes pipelined (send all, then await the acks), durable
//! pull consumers with explicit acks.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use super::{
    Acker, BusError, Deliveries, Delivery, OutgoingMessage, Published, StreamKind, Topology,
};

/// How long a consumer may hold a message before the server delivers it again: short, since
/// the notifier only stores a request before acking it (a dead consumer delays it seconds).
const ACK_WAIT: Duration = Duration::from_secs(10);

/// At most this many unacknowledged messages per consumer.
const MAX_ACK_PENDING: i64 = 10_000;

#[derive(Clone)]
pub struct NatsBus {
    js: Context,
}

impl NatsBus {
    pub(super) async fn connect(
        url: &str,
        topology: &Topology,
        replicas: usize,
    ) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("accountd")
            .connection_timeout(Duration::from_secs(5))
            // Come back quickly after a restart of the server: at most 2 s between tries.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100 * attempts.min(20) as u64)
            })
            // `NATS_URL` may list several servers of a cluster, comma-separated: the first that
            // answers is used, the others are tried when it goes away.
            .connect(url.split(',').map(str::trim).collect::<Vec<_>>())
            .await
            // The URL may carry credentials, so it is not in the message; the kind and its
            // cause are ("IO error: Connection refused (os error 111)").
            .map_err(|e| BusError::Connect(e.to_string()))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .ack_timeout(Duration::from_secs(5))
            .max_ack_inflight(20_000)
            .build(client);
        let bus = Self { js };
        for kind in StreamKind::ALL {
            bus.ensure_stream(topology, kind, replicas).await?;
        }
        Ok(bus)
    }

    async fn ensure_stream(
        &self,
        topology: &Topology,
        kind: StreamKind,
        replicas: usize,
    ) -> Result<(), BusError> {
        let name = topology.stream_name(kind);
        let config = StreamConfig {
            name: name.clone(),
            subjects: vec![topology.subjects(kind)],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            num_replicas: replicas,
            max_age: kind.max_age().unwrap_or_default(),
            duplicate_window: Duration::from_secs(120),
            description: Some(format!("accountd {}", kind.base_name())),
            ..Default::default()
        };
        self.js
            .create_or_update_stream(config)
            .await
            .map_err(|e| BusError::Stream {
                stream: name,
                reason: e.to_string(),
            })?;
        Ok(())
    }

    /// A real round trip: the stream's info from the server (`get_stream_no_info` would only
    /// build a local handle and answer even with the server gone).
    pub(super) async fn ping(&self, topology: &Topology) -> Result<(), BusError> {
        let name = topology.stream_name(StreamKind::AccountEvents);
        self.js
            .get_stream(&name)
            .await
            .map(drop)
            .map_err(|e| BusError::Unreachable(e.to_string()))
    }

    pub(super) async fn publish_all(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<Published, BusError>> {
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            let mut publish = PublishMessage::build().payload(message.payload.into());
            if let Some(id) = &message.message_id {
                publish = publish.message_id(id);
            }
            pending.push(self.js.send_publish(message.subject, publish).await);
        }
        let acks = pending.into_iter().map(|sent| async move {
            match sent {
                Ok(ack) => ack
                    .await
                    .map(|ack| Published {
                        stream_sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    })
                    .map_err(|e| BusError::Publish(e.to_string())),
                Err(e) => Err(BusError::Publish(e.to_string())),
            }
        });
        futures::future::join_all(acks).await
    }

    pub(super) async fn consumer(
        &self,
        topology: &Topology,
        kind: StreamKind,
        durable: &str,
    ) -> Result<NatsConsumer, BusError> {
        let stream = self
            .js
            .get_stream_no_info(topology.stream_name(kind))
            .await
            .map_err(|e| BusError::Consumer(e.to_string()))?;
        let consumer = stream
            .get_or_create_consumer(
                durable,
                pull::Config {
                    durable_name: Some(durable.to_owned()),
                    deliver_policy: DeliverPolicy::All,
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    max_ack_pending: MAX_ACK_PENDING,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BusError::Consumer(e.to_string()))?;
        Ok(NatsConsumer { consumer, kind })
    }

    pub(super) async fn consumer_lag(
        &self,
        topology: &Topology,
        kind: StreamKind,
        durable: &str,
    ) -> Result<u64, BusError> {
        let stream = self
            .js
            .get_stream_no_info(topology.stream_name(kind))
            .await
            .map_err(|e| BusError::Consumer(e.to_string()))?;
        let info = stream
            .consumer_info(durable)
            .await
            .map_err(|e| BusError::Consumer(e.to_string()))?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }

    pub(super) async fn delete_streams(&self, topology: &Topology) -> Result<(), BusError> {
        for kind in StreamKind::ALL {
            let name = topology.stream_name(kind);
            self.js
                .delete_stream(&name)
                .await
                .map_err(|e| BusError::Stream {
                    stream: name,
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    pub(super) async fn delete_consumer(
        &self,
        topology: &Topology,
        kind: StreamKind,
        durable: &str,
    ) -> Result<(), BusError> {
        self.js
            .delete_consumer_from_stream(durable, topology.stream_name(kind))
            .await
            .map(drop)
            .map_err(|e| BusError::Consumer(e.to_string()))
    }
}

pub struct NatsConsumer {
    consumer: jetstream::consumer::Consumer<pull::Config>,
    kind: StreamKind,
}

impl NatsConsumer {
    pub(super) async fn deliveries(&self) -> Result<Deliveries, BusError> {
        let kind = self.kind;
        let messages = self
            .consumer
            .stream()
            .max_messages_per_batch(256)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| BusError::Consumer(e.to_string()))?;
        let deliveries = messages
            .map_err(|e| BusError::Consumer(e.to_string()))
            .and_then(move |message| async move { delivery(kind, message) });
        Ok(Box::pin(deliveries))
    }
}

fn delivery(kind: StreamKind, message: jetstream::Message) -> Result<Delivery, BusError> {
    let (stream_sequence, delivered, published) = {
        let info = message
            .info()
            .map_err(|e| BusError::Consumer(e.to_string()))?;
        let nanos = info.published.unix_timestamp_nanos();
        let published = DateTime::<Utc>::from_timestamp(
            (nanos / 1_000_000_000) as i64,
            (nanos % 1_000_000_000) as u32,
        )
        .unwrap_or_default();
        (
            info.stream_sequence,
            u64::try_from(info.delivered).unwrap_or(1),
            published,
        )
    };
    let (message, acker) = message.split();
    let message_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|v| v.as_str().to_owned());
    Ok(Delivery {
        kind,
        subject: message.subject.to_string(),
        message_id,
        payload: message.payload.to_vec(),
        stream_sequence,
        delivered,
        published,
        acker: Acker::Nats(Box::new(acker)),
    })
}
