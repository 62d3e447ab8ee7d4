//! `/metrics`: the services' state in the Prometheus exposition format
//! (prometheus-client), built from a status snapshot at each scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use warden::service::ServiceStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

/// The text of a scrape.
pub(crate) fn render(status: &[ServiceStatus]) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    let up = Family::<ServiceLabel, Gauge>::default();
    let ready = Family::<ServiceLabel, Gauge>::default();
    let restarts = Family::<ServiceLabel, Counter>::default();
    registry.register("warden_service_up", "1 while a process of the service runs", up.clone());
    registry.register("warden_service_ready", "1 while the service is running and ready", ready.clone());
    registry.register("warden_service_restarts", "Automatic restarts of the service", restarts.clone());
    for s in status {
        let l = ServiceLabel { service: s.name.clone() };
        up.get_or_create(&l).set(i64::from(s.up()));
        ready.get_or_create(&l).set(i64::from(s.serving()));
        restarts.get_or_create(&l).inc_by(s.restarts);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}
