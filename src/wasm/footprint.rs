//! What one instance of a component takes from the engine: core instances, linear memories
//! and tables, known when it is loaded.
//!
//! A component is many core modules, instantiated by its own code: a component of 500
//! core instances, each with a memory of 256 pages, would hold about 8 GiB under a memory
//! cap that one memory at a time obeys, and take the pooling allocator's slots from every
//! other component. So a component's footprint is counted at load and checked against the
//! host's per-component bounds ([`crate::WasmConfig::max_core_instances`],
//! [`crate::WasmConfig::max_memories`], [`crate::WasmConfig::max_tables`]): over them, the
//! load fails with [`crate::LoadError::OverLimits`]. The instance's memory cap then bounds
//! the sum of all its memories (`trap.rs`), and with pooling each registered component
//! reserves its footprint's slots (`host.rs`), so none can take another's.
//!
//! Memories and tables are wasmtime's own count over the component as it will be
//! instantiated (nested components flattened). Core instances are counted here from the
//! binary: each `instantiate` of a core module, and a nested component's count for each
//! `instantiate` of it.

use wasmparser::{ComponentAlias, ComponentOuterAliasKind, Instance, Parser, Payload};

/// What one instance of a component takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Footprint {
    pub(crate) core_instances: u64,
    pub(crate) memories: u64,
    pub(crate) tables: u64,
}

impl Footprint {
    /// The footprint of `component` (compiled from `binary`).
    pub(crate) fn of(binary: &[u8], component: &wasmtime::component::Component) -> Footprint {
        let (memories, tables) =
            component.resources_required().map_or((0, 0), |r| (u64::from(r.num_memories), u64::from(r.num_tables)));
        Footprint { core_instances: core_instances(binary), memories, tables }
    }
}

/// One component (or core module) being read.
enum Scope {
    /// A core module: its payloads are skipped until its `End`.
    Module,
    /// A component: its core instances so far, and the core instances of each component in
    /// its component index space (0 where it cannot be known: imported, aliased from an
    /// instance; such components do not link here).
    Component { core_instances: u64, components: Vec<u64> },
}

/// Core instances made by one instantiation of the component in `binary` (saturating).
fn core_instances(binary: &[u8]) -> u64 {
    let mut stack: Vec<Scope> = Vec::new();
    for payload in Parser::new(0).parse_all(binary) {
        let Ok(payload) = payload else { break };
        match payload {
            Payload::ModuleSection { .. } => stack.push(Scope::Module),
            Payload::ComponentSection { .. } => {
                stack.push(Scope::Component { core_instances: 0, components: Vec::new() });
            }
            Payload::Version { encoding: wasmparser::Encoding::Component, .. } if stack.is_empty() => {
                stack.push(Scope::Component { core_instances: 0, components: Vec::new() });
            }
            Payload::End(_) => {
                let done = stack.pop();
                match (done, stack.last_mut()) {
                    (Some(Scope::Component { core_instances, .. }), Some(Scope::Component { components, .. })) => {
                        components.push(core_instances);
                    }
                    (Some(Scope::Component { core_instances, .. }), None) => return core_instances,
                    _ => {}
                }
            }
            Payload::InstanceSection(reader) => {
                let Some(Scope::Component { core_instances, .. }) = stack.last_mut() else { continue };
                for instance in reader.into_iter().flatten() {
                    if let Instance::Instantiate { .. } = instance {
                        *core_instances = core_instances.saturating_add(1);
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                let Some(Scope::Component { core_instances, components }) = stack.last_mut() else { continue };
                for instance in reader.into_iter().flatten() {
                    if let wasmparser::ComponentInstance::Instantiate { component_index, .. } = instance {
                        let each = components.get(component_index as usize).copied().unwrap_or(0);
                        *core_instances = core_instances.saturating_add(each);
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader.into_iter().flatten() {
                    let counted = match alias {
                        ComponentAlias::Outer { kind: ComponentOuterAliasKind::Component, count, index } => {
                            Some(outer_component(&stack, count, index))
                        }
                        ComponentAlias::InstanceExport {
                            kind: wasmparser::ComponentExternalKind::Component, ..
                        } => Some(0),
                        _ => None,
                    };
                    if let (Some(n), Some(Scope::Component { components, .. })) = (counted, stack.last_mut()) {
                        components.push(n);
                    }
                }
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader.into_iter().flatten() {
                    if matches!(import.ty, wasmparser::ComponentTypeRef::Component(_))
                        && let Some(Scope::Component { components, .. }) = stack.last_mut()
                    {
                        components.push(0);
                    }
                }
            }
            _ => {}
        }
    }
    // Malformed (the compile would have refused it): whatever was counted.
    stack
        .iter()
        .map(|s| match s {
            Scope::Component { core_instances, .. } => *core_instances,
            Scope::Module => 0,
        })
        .fold(0, u64::saturating_add)
}

/// The core instances of component `index` of the component `count` levels out.
fn outer_component(stack: &[Scope], count: u32, index: u32) -> u64 {
    let components: Vec<&Scope> = stack.iter().filter(|s| matches!(s, Scope::Component { .. })).collect();
    let Some(at) = components.len().checked_sub(1 + count as usize) else { return 0 };
    match components[at] {
        Scope::Component { components, .. } => components.get(index as usize).copied().unwrap_or(0),
        Scope::Module => 0,
    }
}

/// With wasmtime's pooling allocator: its slots, and how many of them the components of the
/// host have reserved. Each component reserves its footprint (and one component instance)
/// for as long as it is registered, or its instance otherwise lives: a component whose
/// footprint no longer fits is refused then, with the numbers, instead of leaving another
/// component unable to restart later because the slots it needs were taken.
pub(crate) struct Pool {
    capacity: Slots,
    reserved: crate::sync::Mutex<Slots>,
}

/// Slots of the pooling allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Slots {
    pub(crate) components: u64,
    pub(crate) footprint: Footprint,
}

impl Slots {
    fn fits_in(&self, capacity: &Slots) -> bool {
        let (a, b) = (&self.footprint, &capacity.footprint);
        self.components <= capacity.components
            && a.core_instances <= b.core_instances
            && a.memories <= b.memories
            && a.tables <= b.tables
    }

    fn add(&mut self, other: &Slots) {
        self.components += other.components;
        self.footprint.core_instances += other.footprint.core_instances;
        self.footprint.memories += other.footprint.memories;
        self.footprint.tables += other.footprint.tables;
    }

    fn sub(&mut self, other: &Slots) {
        self.components -= other.components;
        self.footprint.core_instances -= other.footprint.core_instances;
        self.footprint.memories -= other.footprint.memories;
        self.footprint.tables -= other.footprint.tables;
    }
}

impl Pool {
    pub(crate) fn new(capacity: Slots) -> Self {
        Self { capacity, reserved: crate::sync::Mutex::new(Slots::default()) }
    }

    /// Reserves one instance of a component of `footprint`.
    ///
    /// # Errors
    /// The pool has no room for it: what it needs, and what is left.
    pub(crate) fn reserve(self: &crate::sync::Arc<Self>, footprint: Footprint) -> Result<Reservation, String> {
        let want = Slots { components: 1, footprint };
        let mut reserved = self.reserved.lock();
        let mut after = *reserved;
        after.add(&want);
        if !after.fits_in(&self.capacity) {
            let (c, r) = (&self.capacity, &*reserved);
            return Err(format!(
                "the instance pool has no room for it: one instance needs 1 component instance, {} core \
                 instances, {} memories and {} tables, and the pool has {} component instances, {} core \
                 instances, {} memories and {} tables left of {}, {}, {} and {} (WasmConfig::pool_instances)",
                footprint.core_instances,
                footprint.memories,
                footprint.tables,
                c.components - r.components,
                c.footprint.core_instances - r.footprint.core_instances,
                c.footprint.memories - r.footprint.memories,
                c.footprint.tables - r.footprint.tables,
                c.components,
                c.footprint.core_instances,
                c.footprint.memories,
                c.footprint.tables,
            ));
        }
        *reserved = after;
        Ok(Reservation { pool: self.clone(), slots: want })
    }
}

/// Slots reserved in the [`Pool`], returned when dropped.
pub(crate) struct Reservation {
    pool: crate::sync::Arc<Pool>,
    slots: Slots,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.reserved.lock().sub(&self.slots);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).expect("component text")
    }

    #[test]
    fn each_instantiation_counts_nested_components_included() {
        let flat = binary(
            r#"(component
                 (core module $m (memory (export "mem") 1))
                 (core instance $a (instantiate $m))
                 (core instance $b (instantiate $m))
                 (alias core export $a "mem" (core memory $mem))
                 (core instance $bag (export "mem" (memory $mem))))"#,
        );
        assert_eq!(core_instances(&flat), 2, "a bag of exports is no instance");
        let nested = binary(
            r#"(component
                 (component $inner
                   (core module $m)
                   (core instance (instantiate $m))
                   (core instance (instantiate $m))
                   (core instance (instantiate $m)))
                 (instance (instantiate $inner))
                 (instance (instantiate $inner))
                 (core module $n)
                 (core instance (instantiate $n)))"#,
        );
        assert_eq!(core_instances(&nested), 7, "3 for each instance of $inner, and $n's");
    }

    #[test]
    fn a_pool_reservation_is_refused_when_it_does_not_fit_and_returned_when_dropped() {
        let capacity = Slots { components: 3, footprint: Footprint { core_instances: 10, memories: 4, tables: 4 } };
        let pool = crate::sync::Arc::new(Pool::new(capacity));
        let big = Footprint { core_instances: 8, memories: 2, tables: 2 };
        let first = pool.reserve(big).expect("fits");
        let e = pool.reserve(big).err().expect("8 more core instances do not fit in 2");
        assert!(e.contains("2 core instances, 2 memories and 2 tables left of 3, 10, 4 and 4"), "{e}");
        let small = pool.reserve(Footprint { core_instances: 2, memories: 2, tables: 2 }).expect("what is left");
        drop(first);
        let _again = pool.reserve(big).expect("returned when dropped");
        drop(small);
    }
}
