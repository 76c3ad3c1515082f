//! The bindings indexed for authorization: by resource type, then LITERAL names in a
//! hash map and PREFIXED names in a hash map probed once per distinct prefix length, so
//! a check touches only the ACLs that can apply to its resource, never the whole set.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{AclBinding, AclBindingFilter, AclOperation, PatternType, PermissionType};
use super::{ResourceType, WILDCARD};
use crate::Principal;

/// One ACL as the authorizer reads it: the resource is the index key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) principal: Principal,
    pub(crate) host: String,
    pub(crate) operation: AclOperation,
    pub(crate) permission: PermissionType,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TypeIndex {
    /// LITERAL ACLs by resource name; the wildcard `*` is one more name.
    pub(crate) literal: HashMap<String, Vec<Entry>>,
    /// PREFIXED ACLs by prefix.
    pub(crate) prefixed: HashMap<String, Vec<Entry>>,
    /// Byte lengths of the prefixes in `prefixed`, with how many prefixes have each.
    prefix_lens: BTreeMap<usize, usize>,
}

impl TypeIndex {
    /// Every ACL that applies to a resource named `name`: LITERAL equal, LITERAL `*`,
    /// PREFIXED prefixes of it.
    pub(crate) fn applicable<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> {
        let literal = self.literal.get(name).into_iter().flatten();
        let wildcard = (name != WILDCARD)
            .then(|| self.literal.get(WILDCARD))
            .flatten()
            .into_iter()
            .flatten();
        let prefixed = self
            .prefix_lens
            .keys()
            .take_while(move |&&len| len <= name.len())
            .filter_map(move |&len| name.get(..len))
            .filter_map(|prefix| self.prefixed.get(prefix))
            .flatten();
        literal.chain(wildcard).chain(prefixed)
    }
}

/// A set of bindings, indexed. Equality is equality of the bindings.
#[derive(Debug, Clone, Default)]
pub struct AclIndex {
    all: BTreeSet<AclBinding>,
    by_type: HashMap<ResourceType, TypeIndex>,
}

impl PartialEq for AclIndex {
    fn eq(&self, other: &Self) -> bool {
        self.all == other.all
    }
}

impl Eq for AclIndex {}

impl AclIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn contains(&self, b: &AclBinding) -> bool {
        self.all.contains(b)
    }

    /// Every binding, sorted by resource.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.all.iter()
    }

    /// The bindings a filter selects, sorted by resource.
    pub fn matching<'a>(
        &'a self,
        filter: &'a AclBindingFilter,
    ) -> impl Iterator<Item = &'a AclBinding> {
        self.all.iter().filter(move |b| filter.matches(b))
    }

    pub(crate) fn of_type(&self, t: ResourceType) -> Option<&TypeIndex> {
        self.by_type.get(&t)
    }

    /// Adds a binding; false if it was there already. A binding whose principal does
    /// not parse, or with a filter-only value, is kept (and described) but never
    /// matches a request, as it cannot have been created through CreateAcls.
    pub fn insert(&mut self, b: AclBinding) -> bool {
        if self.all.contains(&b) {
            return false;
        }
        if let Some(entry) = Self::entry(&b) {
            let idx = self.by_type.entry(b.resource_type).or_default();
            if b.pattern_type == PatternType::Prefixed {
                let list = idx.prefixed.entry(b.resource_name.clone()).or_default();
                list.push(entry);
                if list.len() == 1 {
                    *idx.prefix_lens.entry(b.resource_name.len()).or_default() += 1;
                }
            } else {
                idx.literal
                    .entry(b.resource_name.clone())
                    .or_default()
                    .push(entry);
            }
        }
        self.all.insert(b)
    }

    /// Removes a binding; false if it was not there.
    pub fn remove(&mut self, b: &AclBinding) -> bool {
        if !self.all.remove(b) {
            return false;
        }
        let Some(entry) = Self::entry(b) else {
            return true;
        };
        let Some(idx) = self.by_type.get_mut(&b.resource_type) else {
            return true;
        };
        let map = if b.pattern_type == PatternType::Prefixed {
            &mut idx.prefixed
        } else {
            &mut idx.literal
        };
        if let Some(list) = map.get_mut(&b.resource_name) {
            if let Some(at) = list.iter().position(|e| *e == entry) {
                list.swap_remove(at);
            }
            if list.is_empty() {
                map.remove(&b.resource_name);
                if b.pattern_type == PatternType::Prefixed {
                    let len = b.resource_name.len();
                    if let Some(n) = idx.prefix_lens.get_mut(&len) {
                        *n -= 1;
                        if *n == 0 {
                            idx.prefix_lens.remove(&len);
                        }
                    }
                }
            }
        }
        if idx.literal.is_empty() && idx.prefixed.is_empty() {
            self.by_type.remove(&b.resource_type);
        }
        true
    }

    fn entry(b: &AclBinding) -> Option<Entry> {
        let usable = b.resource_type != ResourceType::Any
            && matches!(b.pattern_type, PatternType::Literal | PatternType::Prefixed)
            && b.operation != AclOperation::Any
            && b.permission != PermissionType::Any;
        let principal = Principal::parse(&b.principal).filter(|_| usable)?;
        Some(Entry {
            principal,
            host: b.host.clone(),
            operation: b.operation,
            permission: b.permission,
        })
    }
}

impl FromIterator<AclBinding> for AclIndex {
    fn from_iter<I: IntoIterator<Item = AclBinding>>(iter: I) -> Self {
        let mut index = Self::new();
        for b in iter {
            index.insert(b);
        }
        index
    }
}
