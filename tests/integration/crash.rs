//! Crash injection: concurrent writers (single sets and deletes, batches,
//! ttls) against `kvctl serve`, SIGKILL at a seed-chosen instant, restart,
//! and a check of what survived against what was sent and acknowledged.
//!
//! Every writer owns its keys and sends one request at a time, so its
//! writes are ordered and at most one of them is in flight when the kill
//! lands: after the restart each key must hold what the writer's
//! acknowledged writes left, or what its in-flight write would leave, and
//! an in-flight batch must be there whole or not at all.
//!
//! `KVCTL_CRASH_ITERATIONS` sets how many seeds run (default
//! [`DEFAULT_ITERATIONS`]), `KVCTL_CRASH_SEED` reruns exactly one seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use kvctl::client::Client;

use crate::support::{env_count, Server};

/// Seeds run by the plain test command: a few seconds on a slow machine.
const DEFAULT_ITERATIONS: u64 = 12;
/// Keys each writer writes to, so its writes overwrite each other.
const KEYS_PER_WRITER: usize = 6;
/// Bounds a hang of the writers or the server; never judges speed.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// What a key holds: a value, or nothing.
type State = Option<Value>;

/// One request a writer sent, with its effect on each key it writes.
#[derive(Debug, Clone)]
struct Sent {
    what: &'static str,
    effects: Vec<(String, State)>,
}

/// Everything one writer sent, in order; the first `acked` were
/// acknowledged, the one after them (if any) was in flight at the kill.
#[derive(Debug, Default)]
struct WriterLog {
    sent: Vec<Sent>,
    acked: usize,
}

/// What one round of writing and crashing did.
#[derive(Debug, Default)]
struct RoundStats {
    acked: usize,
    in_flight: usize,
    /// Requests in flight at the kill that the restarted server has.
    in_flight_kept: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_random_instants_loses_nothing_acknowledged() {
    let seeds: Vec<u64> = match std::env::var_os("KVCTL_CRASH_SEED") {
        Some(_) => vec![env_count("KVCTL_CRASH_SEED", 0)],
        None => {
            let iterations = env_count("KVCTL_CRASH_ITERATIONS", DEFAULT_ITERATIONS);
            let mut base = fastrand::Rng::new();
            (0..iterations).map(|_| base.u64(..)).collect()
        }
    };
    let (mut acked, mut in_flight, mut kept, mut rounds) = (0, 0, 0, 0);
    for (i, &seed) in seeds.iter().enumerate() {
        println!("crash iteration {i}: KVCTL_CRASH_SEED={seed}");
        let stats = crash_iteration(seed).await;
        rounds += stats.len();
        for round in stats {
            acked += round.acked;
            in_flight += round.in_flight;
            kept += round.in_flight_kept;
        }
    }
    println!(
        "crash: {} iterations ({rounds} kills) ran; {acked} acknowledged writes checked; \
         {in_flight} requests in flight at a kill, {kept} of them kept",
        seeds.len()
    );
}

/// One seed: a server on a fresh directory, one or two rounds of writing,
/// killing, restarting and checking.
async fn crash_iteration(seed: u64) -> Vec<RoundStats> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let fsync = if rng.bool() { "always" } else { "never" };
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--fsync", fsync]);
    // What the store holds for every key written so far, known exactly
    // after each check.
    let mut known: BTreeMap<String, State> = BTreeMap::new();
    let rounds = rng.usize(1..=2);
    let mut stats = Vec::new();
    for round in 0..rounds {
        let context = format!("seed {seed}, round {round}, fsync {fsync}");
        let writers = rng.usize(2..=6);
        let target_acks = rng.usize(0..500);
        let extra_delay = Duration::from_micros(rng.u64(0..3000));
        let logs: Vec<Arc<Mutex<WriterLog>>> = (0..writers).map(|_| Arc::default()).collect();
        let (acks_tx, mut acks_rx) = tokio::sync::watch::channel(0usize);
        let acks_tx = Arc::new(acks_tx);
        let tasks: Vec<_> = logs
            .iter()
            .enumerate()
            .map(|(w, log)| {
                let writer = Writer {
                    client: server.client(),
                    keys: (0..KEYS_PER_WRITER).map(|k| key(w, k)).collect(),
                    tag: format!("r{round}w{w}"),
                    rng: fastrand::Rng::with_seed(rng.u64(..)),
                    log: log.clone(),
                    acks: acks_tx.clone(),
                };
                tokio::spawn(writer.run())
            })
            .collect();
        let reached = tokio::time::timeout(HANG_LIMIT, acks_rx.wait_for(|&n| n >= target_acks));
        assert!(
            matches!(reached.await, Ok(Ok(_))),
            "{context}: the writers stalled before {target_acks} acknowledgements"
        );
        tokio::time::sleep(extra_delay).await;
        server.kill9();
        for task in tasks {
            tokio::time::timeout(HANG_LIMIT, task)
                .await
                .unwrap_or_else(|_| panic!("{context}: a writer hung after the kill"))
                .unwrap();
        }
        server.restart();
        let logs: Vec<WriterLog> = logs
            .into_iter()
            .map(|log| std::mem::take(&mut *log.lock().unwrap()))
            .collect();
        let round_stats = check_recovered(&server.client(), &mut known, &logs, &context).await;
        println!(
            "  {context}: {writers} writers, killed after {} acknowledged writes, \
             {} in flight, {} of them kept",
            round_stats.acked, round_stats.in_flight, round_stats.in_flight_kept
        );
        stats.push(round_stats);
    }
    stats
}

fn key(writer: usize, k: usize) -> String {
    format!("w{writer}/k{k}")
}

/// A writer of its own keys, one request at a time, until a request fails
/// (the server was killed).
struct Writer {
    client: Client,
    keys: Vec<String>,
    /// Makes every value this writer sends unique across rounds.
    tag: String,
    rng: fastrand::Rng,
    log: Arc<Mutex<WriterLog>>,
    acks: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Writer {
    async fn run(mut self) {
        for seq in 0u64.. {
            let sent = self.next_request(seq);
            // Recorded before it is sent: from here on its fate is unknown
            // until the answer comes.
            self.log.lock().unwrap().sent.push(sent.clone());
            if self.send(&sent).await.is_err() {
                return;
            }
            self.log.lock().unwrap().acked += 1;
            self.acks.send_modify(|n| *n += 1);
        }
    }

    fn value(&self, seq: u64, key: &str) -> Value {
        json!({"tag": self.tag, "seq": seq, "key": key})
    }

    fn next_request(&mut self, seq: u64) -> Sent {
        let key = self.keys[self.rng.usize(..self.keys.len())].clone();
        match self.rng.u8(..100) {
            0..40 => Sent {
                what: "set",
                effects: vec![(key.clone(), Some(self.value(seq, &key)))],
            },
            40..55 => Sent {
                what: "set-ttl",
                effects: vec![(key.clone(), Some(self.value(seq, &key)))],
            },
            55..75 => Sent {
                what: "delete",
                effects: vec![(key, None)],
            },
            _ => {
                let len = self.rng.usize(2..=4);
                let mut keys = self.keys.clone();
                self.rng.shuffle(&mut keys);
                let effects = keys
                    .into_iter()
                    .take(len)
                    .map(|k| {
                        // Mostly sets, tagged with the batch's seq; now and
                        // then a delete.
                        let state = (self.rng.u8(..5) != 0).then(|| self.value(seq, &k));
                        (k, state)
                    })
                    .collect();
                Sent {
                    what: "batch",
                    effects,
                }
            }
        }
    }

    async fn send(&self, sent: &Sent) -> Result<(), kvctl::client::ClientError> {
        match (sent.what, &sent.effects[..]) {
            ("set", [(key, Some(value))]) => self.client.put(key, value, None).await,
            // Long enough never to expire during the test.
            ("set-ttl", [(key, Some(value))]) => self.client.put(key, value, Some(3600)).await,
            ("delete", [(key, None)]) => self.client.delete(key).await.map(drop),
            ("batch", effects) => {
                let operations: Vec<Value> = effects
                    .iter()
                    .map(|(key, state)| match state {
                        Some(value) => json!({"op": "set", "key": key, "value": value}),
                        None => json!({"op": "delete", "key": key}),
                    })
                    .collect();
                let results = self
                    .client
                    .batch(&json!({ "operations": operations }))
                    .await?;
                assert_eq!(results.len(), effects.len(), "one result per operation");
                Ok(())
            }
            _ => unreachable!("next_request builds only these shapes: {sent:?}"),
        }
    }
}

/// Checks the restarted server against what the writers sent, then records
/// in `known` what it holds now.
async fn check_recovered(
    client: &Client,
    known: &mut BTreeMap<String, State>,
    logs: &[WriterLog],
    context: &str,
) -> RoundStats {
    let mut stats = RoundStats::default();
    let mut checked = BTreeSet::new();
    let mut now = BTreeMap::new();
    for (w, log) in logs.iter().enumerate() {
        stats.acked += log.acked;
        // What the acknowledged writes left: the state before the round,
        // then each acknowledged request in order.
        let mut acked: BTreeMap<String, State> = (0..KEYS_PER_WRITER)
            .map(|k| {
                let key = key(w, k);
                let before = known.get(&key).cloned().flatten();
                (key, before)
            })
            .collect();
        for sent in &log.sent[..log.acked] {
            for (key, state) in &sent.effects {
                acked.insert(key.clone(), state.clone());
            }
        }
        assert!(
            log.sent.len() <= log.acked + 1,
            "a writer has one request in flight at most"
        );
        let in_flight = log.sent.get(log.acked);
        stats.in_flight += usize::from(in_flight.is_some());
        let mut applied = Vec::new();
        let mut not_applied = Vec::new();
        for (key, acked_state) in &acked {
            let found = client.get(key).await.unwrap();
            let maybe = in_flight
                .and_then(|s| s.effects.iter().find(|(k, _)| k == key))
                .map(|(_, state)| state);
            match maybe {
                Some(state) if found == *state && state != acked_state => applied.push(key),
                _ if found == *acked_state => {
                    if maybe.is_some_and(|state| state != acked_state) {
                        not_applied.push(key);
                    }
                }
                _ => panic!(
                    "{context}: {key} holds {found:?}; its acknowledged writes left \
                     {acked_state:?}, and the request in flight was {in_flight:?}"
                ),
            }
            checked.insert(key.clone());
            now.insert(key.clone(), found);
        }
        stats.in_flight_kept += usize::from(!applied.is_empty());
        assert!(
            applied.is_empty() || not_applied.is_empty(),
            "{context}: request {in_flight:?} half applied: {applied:?} have it, \
             {not_applied:?} do not"
        );
    }
    // Keys of writers of earlier rounds that this round did not have.
    for (key, before) in known.iter().filter(|(k, _)| !checked.contains(*k)) {
        let found = client.get(key).await.unwrap();
        assert_eq!(
            &found, before,
            "{context}: {key} changed though nobody wrote it"
        );
    }
    for key in client.list("").await.unwrap() {
        assert!(
            checked.contains(&key) || known.get(&key).is_some_and(Option::is_some),
            "{context}: {key} is there but was never sent"
        );
    }
    known.extend(now);
    stats
}
