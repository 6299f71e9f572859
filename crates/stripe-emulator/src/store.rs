//! In-memory collections in creation order, with Stripe's cursor pagination, and Stripe-like
//! object ids.

use std::collections::{BTreeMap, HashMap};

use rand::distr::{Alphanumeric, SampleString};

use crate::objects::{Customer, Subscription};
use crate::reply::Reply;

/// Objects by id, kept in creation order (Stripe lists newest first, and a cursor is a
/// position in that order).
#[derive(Debug)]
pub(crate) struct Collection<T> {
    by_position: BTreeMap<u64, T>,
    position_of: HashMap<String, u64>,
    next_position: u64,
}

impl<T> Default for Collection<T> {
    fn default() -> Self {
        Self {
            by_position: BTreeMap::new(),
            position_of: HashMap::new(),
            next_position: 0,
        }
    }
}

/// What a list request asks for. `limit` is 1 to 100; at most one cursor is set.
#[derive(Debug, Default)]
pub(crate) struct PageQuery {
    pub(crate) limit: usize,
    pub(crate) starting_after: Option<String>,
    pub(crate) ending_before: Option<String>,
}

impl<T> Collection<T> {
    /// Adds `item` as the newest; `false` (and nothing added) when the id is taken.
    pub(crate) fn insert(&mut self, id: String, item: T) -> bool {
        if self.position_of.contains_key(&id) {
            return false;
        }
        let position = self.next_position;
        self.next_position += 1;
        self.position_of.insert(id, position);
        self.by_position.insert(position, item);
        true
    }

    pub(crate) fn get(&self, id: &str) -> Option<&T> {
        self.by_position.get(self.position_of.get(id)?)
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.by_position.get_mut(self.position_of.get(id)?)
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<T> {
        let position = self.position_of.remove(id)?;
        self.by_position.remove(&position)
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.by_position.values()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.by_position.values_mut()
    }

    /// One page, newest first, of the items `keep` accepts, and whether more lie beyond it in
    /// the direction read. `ending_before` pages backwards: the `limit` items just newer than
    /// the cursor, still shown newest first, as Stripe does. A cursor naming no object of
    /// this collection is Stripe's 404 on that parameter.
    pub(crate) fn page(
        &self,
        kind: &str,
        query: &PageQuery,
        keep: impl Fn(&T) -> bool,
    ) -> Result<(Vec<&T>, bool), Reply> {
        let cursor = |param: &str, id: &str| {
            self.position_of
                .get(id)
                .copied()
                .ok_or_else(|| Reply::resource_missing(kind, id, param))
        };
        let wanted = query.limit + 1;
        let mut items: Vec<&T> = match (&query.starting_after, &query.ending_before) {
            (Some(id), _) => {
                let position = cursor("starting_after", id)?;
                let older = self.by_position.range(..position).rev();
                older
                    .map(|(_, item)| item)
                    .filter(|item| keep(item))
                    .take(wanted)
                    .collect()
            }
            (None, Some(id)) => {
                let position = cursor("ending_before", id)?;
                let newer = self.by_position.range(position + 1..);
                newer
                    .map(|(_, item)| item)
                    .filter(|item| keep(item))
                    .take(wanted)
                    .collect()
            }
            (None, None) => {
                let newest = self.by_position.values().rev();
                newest.filter(|item| keep(item)).take(wanted).collect()
            }
        };
        let has_more = items.len() > query.limit;
        items.truncate(query.limit);
        if query.starting_after.is_none() && query.ending_before.is_some() {
            items.reverse();
        }
        Ok((items, has_more))
    }
}

/// The emulated account's customers and subscriptions.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) customers: Collection<Customer>,
    pub(crate) subscriptions: Collection<Subscription>,
}

/// A fresh id in Stripe's style: the prefix, an underscore and random letters and digits.
pub(crate) fn new_id(prefix: &str) -> String {
    let suffix = Alphanumeric.sample_string(&mut rand::rng(), 24);
    format!("{prefix}_{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(count: u32) -> Collection<u32> {
        let mut collection = Collection::default();
        for n in 1..=count {
            assert!(collection.insert(format!("n{n}"), n));
        }
        collection
    }

    fn page(
        collection: &Collection<u32>,
        limit: usize,
        after: Option<&str>,
        before: Option<&str>,
    ) -> (Vec<u32>, bool) {
        let query = PageQuery {
            limit,
            starting_after: after.map(str::to_owned),
            ending_before: before.map(str::to_owned),
        };
        let (items, has_more) = collection
            .page("number", &query, |n| n % 5 != 0)
            .unwrap_or_else(|reply| panic!("{:?}", reply.body));
        (items.into_iter().copied().collect(), has_more)
    }

    #[test]
    fn pages_go_newest_first_and_skip_what_the_filter_drops() {
        let collection = numbers(12);
        assert_eq!(page(&collection, 4, None, None), (vec![12, 11, 9, 8], true));
        assert_eq!(
            page(&collection, 4, Some("n8"), None),
            (vec![7, 6, 4, 3], true)
        );
        assert_eq!(page(&collection, 4, Some("n3"), None), (vec![2, 1], false));
        // A cursor may be an item the filter drops: the position still counts.
        assert_eq!(page(&collection, 2, Some("n10"), None), (vec![9, 8], true));
    }

    #[test]
    fn ending_before_reads_the_items_just_newer_than_the_cursor() {
        let collection = numbers(12);
        assert_eq!(
            page(&collection, 3, None, Some("n2")),
            (vec![6, 4, 3], true)
        );
        assert_eq!(
            page(&collection, 3, None, Some("n9")),
            (vec![12, 11], false)
        );
    }

    #[test]
    fn an_unknown_cursor_is_a_404_on_its_parameter() {
        let collection = numbers(2);
        let query = PageQuery {
            limit: 1,
            starting_after: Some("nope".into()),
            ending_before: None,
        };
        let reply = collection.page("number", &query, |_| true).err();
        let body = reply.map(|reply| (reply.status, reply.body));
        assert_eq!(
            body.as_ref()
                .map(|(status, body)| (*status, &body["error"]["param"])),
            Some((404, &serde_json::json!("starting_after")))
        );
    }

    #[test]
    fn ids_are_taken_once_and_removal_frees_them() {
        let mut collection = numbers(2);
        assert!(!collection.insert("n1".into(), 99));
        assert_eq!(collection.remove("n1"), Some(1));
        assert!(collection.get("n1").is_none());
        assert!(collection.insert("n1".into(), 3));
        assert_eq!(collection.iter().copied().collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn ids_carry_their_prefix() {
        let id = new_id("sub");
        assert!(id.starts_with("sub_") && id.len() == 28, "{id}");
        assert_ne!(new_id("sub"), id);
    }
}
