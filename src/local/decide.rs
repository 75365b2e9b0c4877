//! The semantics of commands: what a group of write requests does, decided
//! against the map as it is plus the group's own earlier writes, before
//! anything is logged.
//!
//! Deciding first is what lets a group go to the log as one write: the
//! records it returns are exactly the changes, in order, and the outcomes
//! are what each request is answered once they are durable.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::map::Map;
use crate::storage::{Command, Outcome};
use crate::value::Key;
use crate::wal::{BatchMark, Op, Record};

/// A group's records and answers.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Decided {
    /// The records to log, then apply, in order.
    pub records: Vec<Record>,
    /// One list of outcomes per request.
    pub outcomes: Vec<Vec<Outcome>>,
    /// How many of `records` each request wrote, in order: a request is
    /// applied whole.
    pub records_per_request: Vec<usize>,
}

/// Requests decided one after another, each against the map plus the
/// writes of the requests decided before it, until the records are taken to
/// be logged. A request that writes two or more records gets a batch mark,
/// so that replay keeps all of them or none.
#[derive(Default)]
pub(super) struct Decider {
    decided: Decided,
    /// Keys written by the requests decided so far: Some(index of the set
    /// in `records`) or None for a delete. Built only when a delete or a get
    /// needs it, so plain sets clone no keys.
    written: Option<HashMap<Key, Option<usize>>>,
}

impl Decider {
    /// Decides one request at `now`; its records are numbered from
    /// `next_batch_id` if it is a batch. Only deletes and gets read `map`.
    pub(super) fn request(
        &mut self,
        map: &RwLock<Map>,
        now: u64,
        next_batch_id: &mut u64,
        commands: Vec<Command>,
    ) {
        let first_record = self.decided.records.len();
        let outcomes = commands
            .into_iter()
            .map(|c| self.decide(map, now, c))
            .collect();
        let written = self.decided.records.len() - first_record;
        if written >= 2 {
            let mark = BatchMark {
                id: *next_batch_id,
                len: written as u32,
            };
            *next_batch_id += 1;
            for record in &mut self.decided.records[first_record..] {
                record.batch = Some(mark);
            }
        }
        self.decided.records_per_request.push(written);
        self.decided.outcomes.push(outcomes);
    }

    /// The records of the requests decided so far, in order.
    pub(super) fn records(&self) -> &[Record] {
        &self.decided.records
    }

    /// Whether no request was decided since the last [`Decider::take`].
    pub(super) fn is_empty(&self) -> bool {
        self.decided.outcomes.is_empty()
    }

    /// Everything decided so far; the next request is decided against the
    /// map alone, so the caller applies these before deciding one that
    /// reads it.
    pub(super) fn take(&mut self) -> Decided {
        self.written = None;
        std::mem::take(&mut self.decided)
    }

    fn decide(&mut self, map: &RwLock<Map>, now: u64, command: Command) -> Outcome {
        match command {
            Command::Set { key, value, ttl } => {
                if let Some(written) = self.written.as_mut() {
                    written.insert(key.clone(), Some(self.decided.records.len()));
                }
                self.log(now, Op::Set { key, value, ttl });
                Outcome::Done
            }
            Command::Delete { key } => {
                let live = match self.written().get(&key).copied() {
                    Some(set) => set.is_some(),
                    None => map.read().contains(&key, now),
                };
                if !live {
                    return Outcome::NotFound;
                }
                self.written().insert(key.clone(), None);
                self.log(now, Op::Delete { key });
                Outcome::Done
            }
            Command::Get { key } => {
                let value = match self.written().get(&key).copied() {
                    Some(Some(i)) => match &self.decided.records[i].op {
                        Op::Set { value, .. } => Some(value.json().into()),
                        Op::Delete { .. } => unreachable!("the index of a set"),
                    },
                    Some(None) => None,
                    None => map.read().get(&key, now).map(|v| v.json().into()),
                };
                value.map_or(Outcome::NotFound, Outcome::Value)
            }
        }
    }

    fn log(&mut self, now: u64, op: Op) {
        self.decided.records.push(Record {
            op,
            timestamp_ms: now,
            batch: None,
        });
    }

    /// The keys the group has written so far, indexed on first use.
    fn written(&mut self) -> &mut HashMap<Key, Option<usize>> {
        let records = &self.decided.records;
        self.written.get_or_insert_with(|| {
            records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let set = matches!(r.op, Op::Set { .. }).then_some(i);
                    (r.key().into(), set)
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::map::Entry;
    use crate::storage::suite::{delete, get, set, value};

    fn map_with(key: &str, json: &str) -> RwLock<Map> {
        let mut map = Map::new();
        map.insert(key.into(), Entry::new(value(json), None));
        RwLock::new(map)
    }

    fn decide(
        map: &RwLock<Map>,
        now: u64,
        next_batch_id: &mut u64,
        requests: impl Iterator<Item = Vec<Command>>,
    ) -> Decided {
        let mut decider = Decider::default();
        for commands in requests {
            decider.request(map, now, next_batch_id, commands);
        }
        decider.take()
    }

    fn ops(decided: &Decided) -> Vec<(String, Option<BatchMark>)> {
        decided
            .records
            .iter()
            .map(|r| {
                let op = match &r.op {
                    Op::Set { key, value, .. } => format!("set {key}={}", value.json()),
                    Op::Delete { key } => format!("delete {key}"),
                };
                (op, r.batch)
            })
            .collect()
    }

    #[test]
    fn a_group_sees_the_map_and_its_own_earlier_writes() {
        let map = map_with("old", "1");
        let mut next_batch = 7;
        let requests = vec![
            vec![get("old"), delete("old"), get("old"), delete("old")],
            vec![set("new", "2")],
            vec![get("new"), delete("absent"), set("new", "3"), get("new")],
        ];
        let decided = decide(&map, 1_000, &mut next_batch, requests.into_iter());
        assert_eq!(
            decided.outcomes,
            [
                vec![
                    Outcome::Value("1".into()),
                    Outcome::Done,
                    Outcome::NotFound,
                    Outcome::NotFound
                ],
                vec![Outcome::Done],
                vec![
                    Outcome::Value("2".into()),
                    Outcome::NotFound,
                    Outcome::Done,
                    Outcome::Value("3".into())
                ],
            ]
        );
        // Only changes are logged: no record for reads or for deletes of
        // absent keys; one record alone carries no batch mark.
        assert_eq!(
            ops(&decided),
            [
                ("delete old".to_owned(), None),
                ("set new=2".to_owned(), None),
                ("set new=3".to_owned(), None),
            ]
        );
        assert_eq!(decided.records_per_request, [1, 1, 1]);
        assert_eq!(next_batch, 7, "no request wrote two records");
        assert!(decided.records.iter().all(|r| r.timestamp_ms == 1_000));
    }

    #[test]
    fn a_request_that_writes_two_records_is_one_marked_batch() {
        let map = RwLock::new(Map::new());
        let mut next_batch = 7;
        let requests = vec![
            vec![set("a", "1"), set("b", "1"), delete("a")],
            vec![get("a"), get("b")],
            vec![set("c", "1"), delete("b")],
        ];
        let decided = decide(&map, 0, &mut next_batch, requests.into_iter());
        let mark = |id, len| Some(BatchMark { id, len });
        assert_eq!(
            ops(&decided),
            [
                ("set a=1".to_owned(), mark(7, 3)),
                ("set b=1".to_owned(), mark(7, 3)),
                ("delete a".to_owned(), mark(7, 3)),
                ("set c=1".to_owned(), mark(8, 2)),
                ("delete b".to_owned(), mark(8, 2)),
            ]
        );
        assert_eq!(decided.records_per_request, [3, 0, 2]);
        assert_eq!(
            decided.outcomes[1],
            [Outcome::NotFound, Outcome::Value("1".into())]
        );
        assert_eq!(next_batch, 9);
    }
}
