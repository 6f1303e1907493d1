//! projections (to come).
