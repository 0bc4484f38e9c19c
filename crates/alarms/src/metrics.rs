//! The alarm engine's Prometheus metrics.
//!
//! Owns the counters of alarms fired, delivered, retried, failed and
//! skipped, and the lateness histogram (delivery time minus trigger). It
//! only observes.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The alarm engine's metrics; clones share the series.
#[derive(Clone)]
pub struct AlarmMetrics {
    /// Deliveries planned (one per alarm, channel and recipient).
    pub fired: Counter,
    /// Deliveries accepted by their receiver.
    pub delivered: Counter,
    /// Attempts that failed and will be retried.
    pub retried: Counter,
    /// Deliveries given up (permanent refusal or too many attempts).
    pub failed: Counter,
    /// Alarms found beyond the lateness window and recorded as skipped.
    pub skipped: Counter,
    /// Seconds from trigger to delivery.
    pub lateness_seconds: Histogram,
    /// Firing commands that found the state moved on and were planned again.
    pub stale_plans: Counter,
}

impl Default for AlarmMetrics {
    fn default() -> Self {
        AlarmMetrics {
            fired: Counter::default(),
            delivered: Counter::default(),
            retried: Counter::default(),
            failed: Counter::default(),
            skipped: Counter::default(),
            lateness_seconds: Histogram::new([
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                300.0, 3600.0,
            ]),
            stale_plans: Counter::default(),
        }
    }
}

impl AlarmMetrics {
    /// Registers every series.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "alarms_fired",
            "Alarm deliveries planned",
            self.fired.clone(),
        );
        registry.register(
            "alarms_delivered",
            "Alarm deliveries accepted by their receiver",
            self.delivered.clone(),
        );
        registry.register(
            "alarms_retried",
            "Alarm delivery attempts that will be retried",
            self.retried.clone(),
        );
        registry.register(
            "alarms_failed",
            "Alarm deliveries given up",
            self.failed.clone(),
        );
        registry.register(
            "alarms_skipped",
            "Alarms recorded as skipped, beyond the lateness window",
            self.skipped.clone(),
        );
        registry.register(
            "alarm_lateness_seconds",
            "Seconds from an alarm's trigger to its delivery",
            self.lateness_seconds.clone(),
        );
        registry.register(
            "alarm_stale_plans",
            "Firing plans that found the state moved on",
            self.stale_plans.clone(),
        );
    }
}
