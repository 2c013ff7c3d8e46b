//! `from_env` reads the process environment. One test in its own binary, so nothing else
//! reads the environment while it changes.

#[tokio::test]
async fn from_env_reads_session_backend_and_its_variables() {
    std::env::remove_var("SESSION_BACKEND");
    std::env::set_var("SESSION_TTL", "120");
    let store = session_store::from_env().await.unwrap();
    assert_eq!(store.backend(), "memory");

    std::env::set_var("SESSION_BACKEND", "etcd");
    let err = session_store::from_env().await.unwrap_err();
    assert!(err.to_string().contains("SESSION_BACKEND"), "{err}");

    #[cfg(feature = "redis")]
    {
        let server = redis_harness::RedisServer::start();
        std::env::set_var("SESSION_BACKEND", "redis");
        std::env::set_var("REDIS_HOST", "127.0.0.1");
        std::env::set_var("REDIS_PORT", server.port().to_string());
        let store = session_store::from_env().await.unwrap();
        assert_eq!(store.backend(), "redis");
        assert_eq!(store.count().await.unwrap(), 0);
    }
    #[cfg(feature = "cluster")]
    {
        std::env::set_var("SESSION_BACKEND", "cluster");
        let err = session_store::from_env().await.unwrap_err();
        assert!(err.to_string().contains("REDIS_CLUSTER_NODES"), "{err}");

        // Started on this test's thread: its servers die with the thread that started them.
        let cluster = redis_harness::cluster::ClusterTopology::start();
        std::env::set_var("REDIS_CLUSTER_NODES", cluster.seeds());
        let store = session_store::from_env().await.unwrap();
        assert_eq!(store.backend(), "cluster");
        assert_eq!(store.count().await.unwrap(), 0);
    }
    #[cfg(not(feature = "redis"))]
    {
        std::env::set_var("SESSION_BACKEND", "redis");
        let err = session_store::from_env().await.unwrap_err();
        assert!(err.to_string().contains("`redis` feature"), "{err}");
    }
}
