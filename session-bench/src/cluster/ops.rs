//! The operations each side runs, on our store over one server or the cluster.

use super::*;

/// Our store, on one server or on the cluster.
#[derive(Clone)]
pub(super) enum Store {
    One(RedisStore),
    Cluster(ClusterStore),
}

impl Store {
    pub(super) async fn connect(servers: &Servers, key_prefix: &str) -> Store {
        if servers.seeds.is_empty() {
            let config = our_config(servers.primaries[0].port, key_prefix);
            Store::One(
                RedisStore::connect(config)
                    .await
                    .expect("connect our store"),
            )
        } else {
            let nodes = servers
                .seeds
                .iter()
                .map(|&port| ("127.0.0.1".to_owned(), port))
                .collect();
            let config = ClusterConfig {
                redis: our_config(0, key_prefix),
                ..ClusterConfig::new(nodes)
            };
            Store::Cluster(
                ClusterStore::connect(config)
                    .await
                    .expect("connect the cluster store"),
            )
        }
    }

    pub(super) fn session_store(&self) -> Arc<dyn SessionStore> {
        match self {
            Store::One(s) => Arc::new(s.clone()),
            Store::Cluster(s) => Arc::new(s.clone()),
        }
    }

    /// Sessions `from..to` through the bulk import path (see [`fill`]).
    pub(super) async fn fill(&self, from: usize, to: usize) -> Vec<SessionId> {
        match self {
            Store::One(s) => fill(s, from, to).await,
            Store::Cluster(s) => fill(s.redis(), from, to).await,
        }
    }

    /// Every expiry index key, by slot (one key on one server).
    pub(super) fn expiry_indexes(&self) -> Vec<String> {
        match self {
            Store::One(s) => s.keys().expiry_indexes().to_vec(),
            Store::Cluster(s) => s.redis().keys().expiry_indexes().to_vec(),
        }
    }
}

/// Sessions the delete windows delete: taken one per operation, refilled between windows.
#[derive(Debug, Default)]
pub(super) struct Pool {
    ids: Mutex<Vec<SessionId>>,
    /// The size it is refilled to.
    target: AtomicUsize,
    /// Deletes that found the pool empty (they deleted a missing id instead).
    pub(super) dry: AtomicU64,
}

/// Operations and servers' CPU seconds since the last [`Meter::take`].
#[derive(Debug, Default)]
pub(super) struct Meter {
    ops: AtomicU64,
    before: Mutex<(Vec<f64>, Vec<f64>)>,
    cpu: Mutex<Cpu>,
}

impl Meter {
    pub(super) fn take(&self) -> (u64, Cpu) {
        let ops = self.ops.swap(0, Ordering::Relaxed);
        let cpu = std::mem::take(&mut *self.cpu.lock().expect("not poisoned"));
        (ops, cpu)
    }
}

/// One side of the comparison: a store on its servers, with its sessions.
pub(super) struct Side {
    name: &'static str,
    /// Load, save, refresh.
    store: Arc<dyn SessionStore>,
    /// Its sessions, by [`seed::slot`].
    ids: Vec<SessionId>,
    /// The same sessions as last loaded or saved (each slot is one task's only).
    loaded: Vec<Mutex<Session>>,
    create: Arc<dyn SessionStore>,
    delete: Arc<dyn SessionStore>,
    delete_store: Store,
    pub(super) pool: Pool,
    /// Session data per task (each task is one user).
    data: Vec<SessionData>,
    pub(super) nodes: Connections,
    pub(super) meter: Meter,
}

impl Side {
    pub(super) async fn connect(name: &'static str, servers: &Servers) -> Side {
        let store = Store::connect(servers, prefix::OPS).await.session_store();
        let create = Store::connect(servers, prefix::CREATE)
            .await
            .session_store();
        let delete_store = Store::connect(servers, prefix::DELETE).await;
        let data: Vec<SessionData> = (0..MAX_TASKS)
            .map(|t| seed::data(&format!("user{t}")))
            .collect();
        let mut ids = Vec::new();
        let mut loaded = Vec::new();
        for k in 0..MAX_TASKS * PER_TASK {
            // `seed::slot(task, ..)` is `task` modulo MAX_TASKS: each task is one user.
            let session = store
                .create(data[k % MAX_TASKS].clone())
                .await
                .expect("create");
            ids.push(session.id().clone());
            loaded.push(Mutex::new(session));
        }
        let side = Side {
            name,
            store,
            ids,
            loaded,
            create,
            delete: delete_store.session_store(),
            delete_store,
            pool: Pool::default(),
            data,
            nodes: servers.connect().await,
            meter: Meter::default(),
        };
        let pool = side.delete_store.fill(0, POOL_START).await;
        *side.pool.ids.lock().expect("not poisoned") = pool;
        side.pool.target.store(POOL_START, Ordering::Relaxed);
        side
    }
}

/// Tops the delete pool up to its target, after raising the target to three times what the
/// last window took (the pool was at its target before it).
pub(super) async fn refill(side: &Side) {
    let have = side.pool.ids.lock().expect("not poisoned").len();
    let target = side.pool.target.load(Ordering::Relaxed);
    let target = target.max(3 * target.saturating_sub(have));
    side.pool.target.store(target, Ordering::Relaxed);
    if have < target {
        let fresh = side.delete_store.fill(0, target - have).await;
        side.pool.ids.lock().expect("not poisoned").extend(fresh);
    }
}

/// A contender running `op` on `side`, counting its operations and its servers' CPU time
/// (hooks outside the windows), then `after` (outside the CPU reading).
pub(super) fn contender<F, Fut>(side: &Arc<Side>, op: F, after: Option<AfterWindow>) -> Contender
where
    F: Fn(Arc<Side>, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (s, before, after_side) = (side.clone(), side.clone(), side.clone());
    Contender::new(side.name, move |t, i| {
        let s = s.clone();
        let done = op(s.clone(), t, i);
        async move {
            done.await;
            s.meter.ops.fetch_add(1, Ordering::Relaxed);
        }
    })
    .before_window(move || {
        let s = before.clone();
        Box::pin(async move {
            let now = s.nodes.cpu().await;
            *s.meter.before.lock().expect("not poisoned") = now;
        })
    })
    .after_window(move || {
        let s = after_side.clone();
        Box::pin(async move {
            let (primaries, replicas) = s.nodes.cpu().await;
            {
                let before = s.meter.before.lock().expect("not poisoned");
                let delta = |now: &[f64], then: &[f64]| -> f64 {
                    now.iter().zip(then).map(|(n, t)| n - t).sum()
                };
                let mut cpu = s.meter.cpu.lock().expect("not poisoned");
                cpu.0 += delta(&primaries, &before.0);
                cpu.1 += delta(&replicas, &before.1);
            }
            if let Some(after) = after {
                after(s).await;
            }
        })
    })
}

pub(super) fn load(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, t, i| async move {
            let id = &s.ids[slot(t, i, PER_TASK)];
            assert!(s.store.load(id).await.unwrap().is_some());
        },
        None,
    )
}

pub(super) fn save(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, t, i| async move {
            let k = slot(t, i, PER_TASK);
            let session = s.loaded[k].lock().expect("not poisoned").clone();
            let saved = s.store.save(session).await.unwrap();
            *s.loaded[k].lock().expect("not poisoned") = saved;
        },
        None,
    )
}

pub(super) fn refresh(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, t, i| async move {
            let id = &s.ids[slot(t, i, PER_TASK)];
            assert!(s.store.refresh(id).await.unwrap());
        },
        None,
    )
}

pub(super) fn create(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, t, _| async move {
            s.create.create(s.data[t].clone()).await.unwrap();
        },
        Some(|s| {
            Box::pin(async move { s.nodes.unlink_all(&format!("{}*", prefix::CREATE)).await })
        }),
    )
}

pub(super) fn delete(s: &Arc<Side>) -> Contender {
    contender(
        s,
        |s, _, _| async move {
            let id = s.pool.ids.lock().expect("not poisoned").pop();
            match id {
                Some(id) => assert!(s.delete.delete(&id).await.unwrap()),
                None => {
                    s.pool.dry.fetch_add(1, Ordering::Relaxed);
                    s.delete.delete(&SessionId::generate()).await.unwrap();
                }
            }
        },
        Some(|s| Box::pin(async move { refill(&s).await })),
    )
}
