//! The numbers of SPEC §2 that are not configurable, in one place.

use chrono::Duration;

/// A verification code is valid for five minutes.
pub const CODE_TTL: Duration = Duration::minutes(5);
/// The fifth wrong attempt kills a code.
pub const CODE_MAX_FAILURES: u8 = 5;
/// A step-up authorises gated requests of its session for ten minutes.
pub const STEP_UP_TTL: Duration = Duration::minutes(10);
/// A password-reset token is valid for thirty minutes.
pub const RESET_TOKEN_TTL: Duration = Duration::minutes(30);
/// A protection link ("this wasn't me") in a security notice is valid for seven days.
pub const PROTECTION_TOKEN_TTL: Duration = Duration::days(7);
/// The most characters of a user agent an event keeps (a new-sign-in notice shows it).
pub const USER_AGENT_MAX_CHARS: usize = 200;
/// Five consecutive failed password checks within this window lock password sign-in…
pub const LOCKOUT_WINDOW: Duration = Duration::minutes(15);
/// …this many of them…
pub const LOCKOUT_THRESHOLD: usize = 5;
/// …for this long.
pub const LOCKOUT_DURATION: Duration = Duration::minutes(15);
/// An account recovery by account ID or server IP lives fifteen minutes…
pub const RECOVERY_TTL: Duration = Duration::minutes(15);
/// …and allows five confirmation tries.
pub const RECOVERY_MAX_TRIES: u8 = 5;
/// The most passwords the history keeps (the current one included); the policy's depth is capped here.
pub const MAX_PASSWORD_HISTORY: usize = 10;
