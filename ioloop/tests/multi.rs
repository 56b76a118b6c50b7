//! Behaviour of [`multi`]: several futures awaited together, outputs in input
//! order.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use support::{now_or_never, run, wait_until, yield_now, yield_times, DropFlag};
use whirl_ioloop::{
    multi, sleep, sleep_until, spawn, with_timeout, IoLoop, JoinError, TimeoutError,
};

/// What a future in a `multi` did, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Started(usize),
    Finished(usize),
}

#[test]
fn outputs_come_in_input_order_whatever_the_completion_order() {
    const N: usize = 8;
    let io_loop = IoLoop::new();
    let finished = Rc::new(RefCell::new(Vec::new()));
    let outputs = run(&io_loop, async {
        multi((0..N).map(|i| {
            let finished = finished.clone();
            async move {
                // The last input finishes first: each waits for every later
                // one to finish.
                wait_until(|| finished.borrow().len() == N - 1 - i).await;
                finished.borrow_mut().push(i);
                format!("out {i}")
            }
        }))
        .await
    });
    assert_eq!(*finished.borrow(), (0..N).rev().collect::<Vec<_>>());
    assert_eq!(
        outputs,
        (0..N).map(|i| format!("out {i}")).collect::<Vec<_>>()
    );
}

#[test]
fn outputs_keep_input_order_with_scrambled_completion() {
    let io_loop = IoLoop::new();
    let delays = [3u64, 0, 7, 1, 5, 2, 6, 4];
    let outputs = run(&io_loop, async {
        let base = Instant::now() + Duration::from_millis(5);
        multi(delays.iter().map(|&d| async move {
            sleep_until(base + Duration::from_millis(d)).await;
            d
        }))
        .await
    });
    assert_eq!(outputs, delays.to_vec());
}

#[test]
fn empty_input_yields_an_empty_vec_at_once() {
    let none: Vec<std::future::Ready<u8>> = Vec::new();
    assert_eq!(now_or_never(multi(none)), Some(Vec::new()));
    let io_loop = IoLoop::new();
    let out: Vec<u8> = run(&io_loop, multi(Vec::<std::future::Ready<u8>>::new()));
    assert!(out.is_empty());
}

#[test]
fn ready_futures_yield_at_once() {
    let out = now_or_never(multi((0..5).map(std::future::ready)));
    assert_eq!(out, Some(vec![0, 1, 2, 3, 4]));
}

#[test]
fn the_futures_run_concurrently() {
    const N: usize = 5;
    let io_loop = IoLoop::new();
    let steps = Rc::new(RefCell::new(Vec::new()));
    run(&io_loop, async {
        multi((0..N).map(|i| {
            let steps = steps.clone();
            async move {
                steps.borrow_mut().push(Step::Started(i));
                sleep(Duration::from_millis(5)).await;
                steps.borrow_mut().push(Step::Finished(i));
            }
        }))
        .await
    });
    let steps = steps.borrow();
    assert_eq!(steps.len(), 2 * N);
    let first_finish = steps
        .iter()
        .position(|s| matches!(s, Step::Finished(_)))
        .expect("some future finished");
    assert_eq!(
        first_finish, N,
        "every future started before any finished: {steps:?}"
    );
    for i in 0..N {
        assert!(steps[..N].contains(&Step::Started(i)));
    }
}

#[test]
fn the_futures_can_wait_on_each_other() {
    // Each future arrives at a rendezvous and waits for all the others: run
    // one after another, this could never finish.
    const N: usize = 4;
    let io_loop = IoLoop::new();
    let arrived = Rc::new(Cell::new(0));
    let out = run(&io_loop, async {
        multi((0..N).map(|i| {
            let arrived = arrived.clone();
            async move {
                arrived.set(arrived.get() + 1);
                wait_until(|| arrived.get() == N).await;
                i * 10
            }
        }))
        .await
    });
    assert_eq!(out, vec![0, 10, 20, 30]);
}

#[test]
fn multi_over_join_handles_collects_their_results() {
    let io_loop = IoLoop::new();
    let out = run(&io_loop, async {
        let handles: Vec<_> = (0..4u32)
            .map(|i| {
                spawn(async move {
                    yield_times(4 - i as usize).await;
                    i
                })
            })
            .collect();
        handles[2].abort();
        multi(handles).await
    });
    assert_eq!(out, vec![Ok(0), Ok(1), Err(JoinError::Cancelled), Ok(3)]);
}

#[test]
fn dropping_a_multi_drops_every_unfinished_future() {
    let io_loop = IoLoop::new();
    let flags: Vec<DropFlag> = (0..3).map(|_| DropFlag::new()).collect();
    let out = run(&io_loop, async {
        let tokens: Vec<_> = flags.iter().map(DropFlag::token).collect();
        let all = multi(tokens.into_iter().map(|token| async move {
            let _token = token;
            sleep(Duration::from_secs(3600)).await;
        }));
        let out = with_timeout(Duration::from_millis(5), all).await;
        yield_now().await;
        out
    });
    assert_eq!(out, Err(TimeoutError));
    assert!(flags.iter().all(DropFlag::dropped));
    assert_eq!(io_loop.pending_timeouts(), 0);
}
