//! What one call may take: one memory budget for all of the component's linear memories
//! together, and caps on its tables' size and on how many instances, memories and tables it
//! creates. wasmtime's own `StoreLimits` caps each memory alone, so a component of many
//! modules could take a multiple of its limit; this one counts them all.

/// The memory budget of one call was spent: the growth that would pass it traps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("growing memory by {grow} bytes would take the call past its budget of {budget} bytes")]
pub(crate) struct MemoryBudgetSpent {
    /// The growth refused.
    pub grow: usize,
    /// The call's budget.
    pub budget: usize,
}

/// Per-component caps besides memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentCaps {
    /// Core instances one component may create.
    pub instances: usize,
    /// Linear memories one component may define.
    pub memories: usize,
    /// Tables one component may define.
    pub tables: usize,
    /// Elements one table may hold.
    pub table_elements: usize,
}

impl Default for ComponentCaps {
    fn default() -> ComponentCaps {
        ComponentCaps {
            instances: 32,
            memories: 8,
            tables: 32,
            table_elements: 100_000,
        }
    }
}

/// The longest key and value a plugin may store; a longer one fails that write with a clear
/// error to the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValueLimits {
    /// Bytes of a key.
    pub max_key_bytes: usize,
    /// Bytes of a value.
    pub max_value_bytes: usize,
}

impl Default for KeyValueLimits {
    fn default() -> KeyValueLimits {
        KeyValueLimits {
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
        }
    }
}

impl KeyValueLimits {
    /// Why `key` (and `value`, when written) may not be stored, if it may not.
    pub(crate) fn check(&self, key: &str, value: Option<&[u8]>) -> Result<(), String> {
        if key.len() > self.max_key_bytes {
            return Err(format!(
                "the key has {} bytes; keys may have at most {}",
                key.len(),
                self.max_key_bytes
            ));
        }
        match value {
            Some(value) if value.len() > self.max_value_bytes => Err(format!(
                "the value has {} bytes; values may have at most {}",
                value.len(),
                self.max_value_bytes
            )),
            _ => Ok(()),
        }
    }
}

/// One call's limiter: a store's `ResourceLimiter`.
pub(crate) struct CallLimiter {
    budget: usize,
    used: usize,
    caps: ComponentCaps,
}

impl CallLimiter {
    /// A limiter for `budget` bytes of memory across all memories, and `caps`.
    pub fn new(budget: u64, caps: ComponentCaps) -> CallLimiter {
        CallLimiter {
            budget: usize::try_from(budget).unwrap_or(usize::MAX),
            used: 0,
            caps,
        }
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        match self.used.checked_add(grow) {
            Some(total) if total <= self.budget => {
                self.used = total;
                Ok(true)
            }
            // A trap, not a failed `memory.grow`: a guest that ignores the failure would
            // otherwise go on with less memory than it believes it has.
            _ => Err(wasmtime::Error::new(MemoryBudgetSpent {
                grow,
                budget: self.budget,
            })),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.caps.table_elements)
    }

    fn instances(&self) -> usize {
        self.caps.instances
    }

    fn memories(&self) -> usize {
        self.caps.memories
    }

    fn tables(&self) -> usize {
        self.caps.tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter as _;

    #[test]
    fn the_budget_counts_every_memory_together() {
        let mut limiter = CallLimiter::new(100, ComponentCaps::default());
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        let err = limiter.memory_growing(0, 40, None).unwrap_err();
        assert_eq!(
            err.downcast_ref::<MemoryBudgetSpent>(),
            Some(&MemoryBudgetSpent {
                grow: 40,
                budget: 100
            })
        );
        assert!(limiter.memory_growing(40, 60, None).unwrap());
        assert!(limiter.memory_growing(60, 61, None).is_err());
    }
}
