//! `[registry]`: warden registers each service that has `register` in etcd
//! once it is ready, deregisters it when it stops (or is no longer ready),
//! and keeps the registration through deletions and lease loss with the
//! re-register gate: one recovery driver (`warden::gate::Recovery`) per
//! registered service over one `warden::etcd::EtcdRegistry`, whose watch,
//! keep-alives and resync loop report to it. Needs the cargo feature
//! `etcd`; without it a config with `[registry]` is refused.

use std::path::Path;

use warden::service::Config;

/// Refuses `[registry]` in a warden built without the `etcd` feature,
/// naming where the section is.
pub(crate) fn check_supported(path: &Path, text: &str, config: &Config) -> anyhow::Result<()> {
    if cfg!(feature = "etcd") || config.registry.is_none() {
        return Ok(());
    }
    let line = text.lines().position(|l| l.trim_start().starts_with("[registry]")).map_or(1, |i| i + 1);
    anyhow::bail!(
        "{}:{line}:1: [registry] needs a warden built with the cargo feature `etcd` \
         (cargo build --release -p warden --features etcd)",
        path.display()
    )
}

#[cfg(feature = "etcd")]
pub(crate) use with_etcd::Registrations;

#[cfg(not(feature = "etcd"))]
pub(crate) use without_etcd::Registrations;

#[cfg(not(feature = "etcd"))]
mod without_etcd {
    use warden::env::real::RealEnv;
    use warden::service::{Config, Handle};

    /// No registry in this build (`check_supported` refused the config).
    #[derive(Clone)]
    pub(crate) struct Registrations;

    impl Registrations {
        pub(crate) fn from_config(_env: &RealEnv, _config: &Config) -> Option<Registrations> {
            None
        }

        pub(crate) async fn run(self, _handle: Handle) {}

        pub(crate) async fn shutdown(&self) {}
    }
}

#[cfg(feature = "etcd")]
mod with_etcd {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};
    use std::rc::Rc;
    use std::time::Duration;

    use warden::env::Env;
    use warden::env::real::RealEnv;
    use warden::etcd::{EtcdConfig, EtcdRegistry, Reports};
    use warden::gate::{GateConfig, Recovery, RecoveryConfig};
    use warden::service::{Config, Handle, Register, RegistryConfig};

    type Driver = Recovery<RealEnv, EtcdRegistry<RealEnv>>;

    /// How often readiness is compared with what is registered.
    const POLL: Duration = Duration::from_millis(200);
    /// Longest pause between two tries to reach etcd at start.
    const CONNECT_PAUSE_MAX: Duration = Duration::from_secs(5);
    /// Deadline of the deregistration of everything at exit.
    const EXIT_DEADLINE: Duration = Duration::from_secs(5);

    struct Inner {
        env: RealEnv,
        config: RegistryConfig,
        /// (service, its registration), in file order.
        services: Vec<(String, Register)>,
        registry: RefCell<Option<EtcdRegistry<RealEnv>>>,
        /// Key -> the recovery driver keeping it registered.
        active: RefCell<BTreeMap<String, Driver>>,
        /// Keys being deregistered: not registered again until that ends.
        stopping: RefCell<BTreeSet<String>>,
    }

    /// The registrations of one warden; cheap to clone.
    #[derive(Clone)]
    pub(crate) struct Registrations(Rc<Inner>);

    /// The gate's timings here: retries start at 1 s (etcd is no
    /// overloaded HTTP endpoint) and back off to 30 s.
    fn recovery_config() -> RecoveryConfig {
        let gate = GateConfig {
            coalesce_window: Duration::from_secs(30),
            failure_backoff: Duration::from_secs(1),
            failure_backoff_max: Duration::from_secs(30),
            register_deadline: Duration::from_secs(10),
        };
        RecoveryConfig { gate, heartbeats: false, ..RecoveryConfig::default() }
    }

    impl Registrations {
        /// The registrations `config` asks for, if it has `[registry]`.
        pub(crate) fn from_config(env: &RealEnv, config: &Config) -> Option<Registrations> {
            let registry = config.registry.clone()?;
            let services = config.services.iter().filter_map(|s| Some((s.name.clone(), s.register.clone()?))).collect();
            Some(Registrations(Rc::new(Inner {
                env: env.clone(),
                config: registry,
                services,
                registry: RefCell::new(None),
                active: RefCell::default(),
                stopping: RefCell::default(),
            })))
        }

        /// Connects to etcd (retrying while it cannot be reached), then keeps
        /// every service's registration in step with its readiness.
        pub(crate) async fn run(self, handle: Handle) {
            let (registry, reports) = self.connect().await;
            let me = self.clone();
            let route = move |key: &str| me.0.active.borrow().get(key).cloned();
            let env = self.0.env.clone();
            drop(env.spawn("registry.reports", reports.pump(env.clone(), route)));
            loop {
                self.step(&handle, &registry);
                env.sleep(POLL).await;
            }
        }

        async fn connect(&self) -> (EtcdRegistry<RealEnv>, Reports) {
            let env = &self.0.env;
            let c = &self.0.config;
            let config = EtcdConfig {
                endpoints: c.etcd.clone(),
                prefix: c.prefix.clone(),
                ttl: c.ttl,
                resync_interval: Duration::from_secs(5),
                call_timeout: Duration::from_secs(5),
            };
            let mut pause = Duration::from_millis(250);
            loop {
                match EtcdRegistry::connect(env.clone(), config.clone()).await {
                    Ok((registry, reports)) => {
                        for (_, r) in &self.0.services {
                            registry.set_value(&r.key, &r.value);
                        }
                        tracing::info!(endpoints = ?c.etcd, prefix = c.prefix.as_str(), "registry: connected to etcd");
                        *self.0.registry.borrow_mut() = Some(registry.clone());
                        return (registry, reports);
                    }
                    Err(e) => tracing::warn!(error = %e, "registry: cannot reach etcd; trying again"),
                }
                env.sleep(pause).await;
                pause = (pause * 2).min(CONNECT_PAUSE_MAX);
            }
        }

        /// Registers each ready service not registered yet, deregisters each
        /// registered one that is no longer ready (or warden stops).
        fn step(&self, handle: &Handle, registry: &EtcdRegistry<RealEnv>) {
            let status = handle.status();
            let stopping = handle.is_stopping();
            for (name, r) in &self.0.services {
                let ready = status.iter().any(|s| s.name == *name && s.serving());
                let want = ready && !stopping;
                let have = self.0.active.borrow().contains_key(&r.key);
                // RACE CONDITION SAFETY: a deregistration in flight would
                // delete the registration a new driver adopts.
                if want && !have && !self.0.stopping.borrow().contains(&r.key) {
                    match Recovery::new(self.0.env.clone(), registry.clone(), recovery_config()) {
                        Ok(d) => {
                            tracing::info!(service = name.as_str(), key = r.key.as_str(), "registry: registering");
                            d.start(std::slice::from_ref(&r.key));
                            self.0.active.borrow_mut().insert(r.key.clone(), d);
                        }
                        Err(e) => tracing::error!(error = %e, "registry: bad gate timings"),
                    }
                } else if !want && have {
                    tracing::info!(service = name.as_str(), key = r.key.as_str(), "registry: deregistering");
                    let driver = self.0.active.borrow_mut().remove(&r.key);
                    self.0.stopping.borrow_mut().insert(r.key.clone());
                    let (me, registry, key) = (self.clone(), registry.clone(), r.key.clone());
                    drop(self.0.env.spawn("registry.deregister", async move {
                        if let Some(d) = driver {
                            stop(d, &registry, &key).await;
                        }
                        me.0.stopping.borrow_mut().remove(&key);
                    }));
                }
            }
        }

        /// Deregisters everything still registered (bounded) and stops
        /// talking to etcd.
        pub(crate) async fn shutdown(&self) {
            let registry = self.0.registry.borrow().clone();
            let Some(registry) = registry else { return };
            let drivers: Vec<(String, Driver)> = std::mem::take(&mut *self.0.active.borrow_mut()).into_iter().collect();
            let begun: BTreeSet<String> = self.0.stopping.borrow().clone();
            // RACE CONDITION SAFETY: the step loop runs until the exit: a key
            // stopped here is marked stopping first (and stays so), or the
            // loop would register it again while it is deregistered.
            self.0.stopping.borrow_mut().extend(drivers.iter().map(|(key, _)| key.clone()));
            let env = self.0.env.clone();
            let all = async {
                futures::future::join_all(drivers.iter().map(|(key, d)| stop(d.clone(), &registry, key))).await;
                // Deregistrations begun before the exit end too.
                while self.0.stopping.borrow().iter().any(|key| begun.contains(key)) {
                    env.sleep(Duration::from_millis(50)).await;
                }
            };
            if self.0.env.timeout(EXIT_DEADLINE, all).await.is_err() {
                tracing::warn!("registry: deregistration at exit missed its deadline; leases expire at their TTL");
            }
            registry.close().await;
        }
    }

    /// Stops `driver`'s recoveries, then deregisters what it and the
    /// registry hold for `key`.
    async fn stop(driver: Driver, registry: &EtcdRegistry<RealEnv>, key: &str) {
        // RACE CONDITION SAFETY: recoveries stop first, so none registers
        // again after the deregistration below.
        driver.root().cancel();
        driver.shutdown().await;
        if let Err(e) = registry.deregister_key(key).await {
            tracing::warn!(key, error = %e, "registry: cannot deregister");
        }
    }
}
