//! The dependency graph of services: `after` edges, a start order in which
//! every service comes after its dependencies, and the cycle (if any) that
//! makes such an order impossible.

use std::collections::BTreeSet;

/// Services by index; `deps[i]` are the indices service `i` starts after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    deps: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    order: Vec<usize>,
}

/// The indices of a dependency cycle, first repeated at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<usize>);

impl Graph {
    /// The graph of `deps`; a [`Cycle`] when there is one. Indices in
    /// `deps` must be in range (the config checks names first).
    pub fn new(deps: Vec<Vec<usize>>) -> Result<Graph, Cycle> {
        let n = deps.len();
        let mut dependents = vec![Vec::new(); n];
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                if !dependents[d].contains(&i) {
                    dependents[d].push(i);
                }
            }
        }
        // Depth-first, in index order, so the order is the file's order
        // wherever dependencies allow.
        let mut order = Vec::with_capacity(n);
        let mut done = vec![false; n];
        let mut on_path = Vec::new();
        for root in 0..n {
            visit(root, &deps, &mut done, &mut on_path, &mut order)?;
        }
        Ok(Graph { deps, dependents, order })
    }

    /// A start order: each service after all of its dependencies.
    pub fn start_order(&self) -> &[usize] {
        &self.order
    }

    /// What `i` starts after.
    pub fn deps(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }

    /// What starts after `i` (and so stops before it).
    pub fn dependents(&self, i: usize) -> &[usize] {
        &self.dependents[i]
    }

    /// How many services.
    pub fn len(&self) -> usize {
        self.deps.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// Every service `i` depends on, directly or not.
    pub fn all_deps(&self, i: usize) -> BTreeSet<usize> {
        closure(&self.deps, i)
    }

    /// Every service that depends on `i`, directly or not: all of them
    /// stop before `i` does.
    pub fn all_dependents(&self, i: usize) -> BTreeSet<usize> {
        closure(&self.dependents, i)
    }
}

fn closure(edges: &[Vec<usize>], i: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = edges[i].clone();
    while let Some(d) = stack.pop() {
        if seen.insert(d) {
            stack.extend(edges[d].iter().copied());
        }
    }
    seen
}

fn visit(
    i: usize,
    deps: &[Vec<usize>],
    done: &mut [bool],
    on_path: &mut Vec<usize>,
    order: &mut Vec<usize>,
) -> Result<(), Cycle> {
    if done[i] {
        return Ok(());
    }
    if let Some(pos) = on_path.iter().position(|&p| p == i) {
        let mut cycle = on_path[pos..].to_vec();
        cycle.push(i);
        return Err(Cycle(cycle));
    }
    on_path.push(i);
    for &d in &deps[i] {
        visit(d, deps, done, on_path, order)?;
    }
    on_path.pop();
    done[i] = true;
    order.push(i);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_puts_dependencies_first_and_cycles_are_named() {
        let g = Graph::new(vec![vec![1], vec![], vec![0, 1]]).unwrap();
        assert_eq!(g.start_order(), &[1, 0, 2]);
        assert_eq!(g.dependents(1), &[0, 2]);
        assert_eq!(g.all_deps(2), [0, 1].into_iter().collect());
        assert_eq!(Graph::new(vec![vec![1], vec![0]]), Err(Cycle(vec![0, 1, 0])));
        assert_eq!(Graph::new(vec![vec![0]]), Err(Cycle(vec![0, 0])));
    }

    proptest::proptest! {
        #[test]
        fn any_acyclic_graph_orders_dependencies_first(edges in proptest::collection::vec((0usize..8, 0usize..8), 0..20)) {
            // Only edges from a higher to a lower index: acyclic by construction.
            let mut deps = vec![Vec::new(); 8];
            for (a, b) in edges {
                if a > b && !deps[a].contains(&b) {
                    deps[a].push(b);
                }
            }
            let g = Graph::new(deps.clone()).unwrap();
            let pos = |i: usize| g.start_order().iter().position(|&x| x == i).unwrap();
            for (i, ds) in deps.iter().enumerate() {
                for &d in ds {
                    proptest::prop_assert!(pos(d) < pos(i));
                }
            }
        }
    }
}
