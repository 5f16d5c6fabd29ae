//! The GCRA rate limiter.

use std::time::Duration;

use waiaas_domain::ports::{Rate, RateLimiter};

use crate::support::{Inspector, eventually, shared};

#[tokio::test]
async fn a_fresh_subject_may_make_its_burst_at_once_and_the_next_request_is_refused() {
    let (redis, _) = shared().await;
    let rate = Rate {
        per_second: 2.0,
        burst: 5,
    };
    for expected_remaining in (0..5).rev() {
        let decision = redis.check("agent:a", rate).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.remaining, expected_remaining);
        assert_eq!(decision.retry_after, Duration::ZERO);
    }
    let refused = redis.check("agent:a", rate).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    // About one emission interval (500 ms), less what has passed since the burst.
    assert!(
        refused.retry_after > Duration::from_millis(300)
            && refused.retry_after <= Duration::from_millis(500),
        "retry after {:?}",
        refused.retry_after
    );
}

#[tokio::test]
async fn subjects_are_limited_independently() {
    let (redis, _) = shared().await;
    let rate = Rate {
        per_second: 1.0,
        burst: 2,
    };
    for _ in 0..2 {
        assert!(redis.check("agent:a", rate).await.unwrap().allowed);
    }
    assert!(!redis.check("agent:a", rate).await.unwrap().allowed);
    let other = redis.check("agent:b", rate).await.unwrap();
    assert!(other.allowed);
    assert_eq!(other.remaining, 1);
}

#[tokio::test]
async fn a_refused_subject_is_allowed_again_after_the_emission_interval() {
    let (redis, _) = shared().await;
    let rate = Rate {
        per_second: 10.0,
        burst: 1,
    };
    assert!(redis.check("agent:r", rate).await.unwrap().allowed);
    let refused = redis.check("agent:r", rate).await.unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after <= Duration::from_millis(100));
    // Polled every 20 ms: were refusals counted, the window would move away for ever.
    eventually(
        Duration::from_secs(5),
        "a request allowed again",
        || async {
            redis
                .check("agent:r", rate)
                .await
                .unwrap()
                .allowed
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_rate_limit_key_lives_only_as_long_as_its_window() {
    let (redis, cfg) = shared().await;
    let inspect = Inspector::new(&cfg).await;
    let rate = Rate {
        per_second: 1.0,
        burst: 3,
    };
    redis.check("agent:ttl", rate).await.unwrap();
    let key = format!("{}ratelimit:requests:agent:ttl", cfg.key_prefix);
    let pttl = inspect.pttl(&key).await;
    assert!(pttl > 0 && pttl <= 1_000, "PTTL {pttl}");
    redis.check("agent:ttl", rate).await.unwrap();
    let pttl = inspect.pttl(&key).await;
    assert!(pttl > 1_000 && pttl <= 2_000, "PTTL {pttl}");
}

#[tokio::test]
async fn a_rate_that_allows_nothing_is_an_error() {
    let (redis, _) = shared().await;
    let rate = Rate {
        per_second: 0.0,
        burst: 1,
    };
    assert!(redis.check("agent:zero", rate).await.is_err());
}
