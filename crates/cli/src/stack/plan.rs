//! Planning: what must change for the cloud to match the file, and how
//! it is shown. Pure logic over the parsed file, the state and what the
//! refresh saw; applying the plan is `apply.rs`'s job.
//!
//! A resource is created when the state has none (or the one it had was
//! deleted behind the stack's back); updated in place when only fields its
//! API can change changed; replaced (deleted, then created) when any other
//! field changed, when a resource it holds the id of is replaced, or when
//! a server is in ERROR; deleted when it left the file. Deletions run
//! first, dependents before what they depend on; then creations and
//! updates in dependency order.

use crate::exit::{CliError, CliResult};
use crate::stack::spec::{Addr, Desired, ResKind, Stack};
use crate::stack::state::State;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What the refresh saw of a recorded resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Live {
    /// It exists; servers carry their status.
    Present(Option<String>),
    /// It is gone.
    Missing,
}

/// What happens to one resource.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create it (`note`: why, when not simply new).
    Create(Option<String>),
    /// Change these fields in place.
    Update(Vec<String>),
    /// Delete and create again, for these reasons.
    Replace(Vec<String>),
    /// Delete it.
    Delete,
}

/// One planned change.
#[derive(Clone, Debug)]
pub struct Change {
    /// The resource.
    pub addr: Addr,
    /// What happens.
    pub action: Action,
    /// Its desired form (absent for deletions).
    pub desired: Option<Desired>,
}

/// The plan.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Deletions, and the deletion half of replacements, in order.
    pub deletes: Vec<Change>,
    /// Creations, updates and the creation half of replacements, in order.
    pub applies: Vec<Change>,
    /// Recorded resources that are already gone and no longer wanted:
    /// dropped from the state silently.
    pub forget: Vec<String>,
}

impl Plan {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.applies.is_empty()
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Fields that differ between what was applied and what is wanted.
fn changed_fields(old: &Value, new: &Value) -> Vec<(String, Value, Value)> {
    let mut keys: BTreeSet<&String> = BTreeSet::new();
    for v in [old, new] {
        if let Some(o) = v.as_object() {
            keys.extend(o.keys());
        }
    }
    keys.into_iter()
        .filter(|k| old[k.as_str()] != new[k.as_str()])
        .map(|k| (k.clone(), old[k.as_str()].clone(), new[k.as_str()].clone()))
        .collect()
}

/// Names of other stack-owned resources a server refers to: a resource the
/// file dropped cannot still be used by one it keeps.
fn check_dangling(stack: &Stack, state: &State) -> CliResult {
    let declared: BTreeSet<Addr> = stack.resources.iter().map(|d| d.addr.clone()).collect();
    for d in &stack.resources {
        let i = &d.inputs;
        let mut used: Vec<Addr> = Vec::new();
        match d.addr.kind {
            ResKind::Server => {
                for n in i["networks"].as_array().into_iter().flatten() {
                    used.push(Addr::new(
                        ResKind::Network,
                        n["network"].as_str().unwrap_or(""),
                    ));
                }
                for g in i["security_groups"].as_array().into_iter().flatten() {
                    used.push(Addr::new(ResKind::SecurityGroup, g.as_str().unwrap_or("")));
                }
                if let Some(g) = i["server_group"].as_str() {
                    used.push(Addr::new(ResKind::ServerGroup, g));
                }
                if let Some(k) = i["key_name"].as_str() {
                    used.push(Addr::new(ResKind::Keypair, k));
                }
            }
            ResKind::SecurityGroupRule => {
                if let Some(g) = i["remote_group"].as_str() {
                    used.push(Addr::new(ResKind::SecurityGroup, g));
                }
            }
            _ => used.extend(crate::stack::l3::uses(d)),
        }
        for u in used {
            if !declared.contains(&u) && state.get(&u).is_some() {
                return Err(CliError::usage(format!(
                    "{} refers to {u}, which the file no longer declares (it would be \
                     deleted): remove the reference too, or keep declaring it",
                    d.addr
                )));
            }
        }
    }
    Ok(())
}

/// Computes the plan.
pub fn diff(stack: &Stack, state: &State, live: &BTreeMap<String, Live>) -> CliResult<Plan> {
    check_dangling(stack, state)?;
    let mut plan = Plan::default();
    let mut renewed: BTreeSet<Addr> = BTreeSet::new();
    let mut replaced: Vec<Change> = Vec::new();
    for d in &stack.resources {
        let entry = state.get(&d.addr);
        let live_now = entry.and_then(|e| live.get(&e.addr().key()));
        let action = match (entry, live_now) {
            (None, _) => Some(Action::Create(None)),
            (Some(e), _) if e.pending.is_some() => Some(Action::Create(Some(
                "resuming an interrupted create".into(),
            ))),
            (Some(_), Some(Live::Missing)) => Some(Action::Create(Some(
                "it was deleted outside the stack".into(),
            ))),
            (Some(e), status) => {
                let changes = changed_fields(&e.inputs, &d.inputs);
                let updatable = d.addr.kind.updatable();
                let mut reasons: Vec<String> = changes
                    .iter()
                    .filter(|(k, _, _)| !updatable.contains(&k.as_str()))
                    .map(|(k, o, n)| format!("{k}: {} -> {}", short(o), short(n)))
                    .collect();
                // What a floating IP must be associated again for.
                let mut relink: Vec<String> = Vec::new();
                for r in &d.refs {
                    if r.hard && renewed.contains(&r.to) {
                        reasons.push(format!("{} is replaced", r.to));
                    } else if d.addr.kind == ResKind::FloatingIp && renewed.contains(&r.to) {
                        relink.push(format!("{} is replaced", r.to));
                    }
                }
                if d.addr.kind == ResKind::FloatingIp
                    && let Some(Live::Present(Some(s))) = status
                    && s.eq_ignore_ascii_case("DOWN")
                {
                    relink.push("it is not associated".into());
                }
                if let Some(Live::Present(Some(s))) = status
                    && s.eq_ignore_ascii_case("ERROR")
                {
                    reasons.push("it is in ERROR".into());
                }
                if !reasons.is_empty() {
                    Some(Action::Replace(reasons))
                } else if !changes.is_empty() || !relink.is_empty() {
                    Some(Action::Update(
                        changes
                            .iter()
                            .map(|(k, o, n)| format!("{k}: {} -> {}", short(o), short(n)))
                            .chain(relink)
                            .collect(),
                    ))
                } else {
                    None
                }
            }
        };
        let Some(action) = action else { continue };
        if matches!(action, Action::Create(_) | Action::Replace(_)) {
            renewed.insert(d.addr.clone());
        }
        let change = Change {
            addr: d.addr.clone(),
            action,
            desired: Some(d.clone()),
        };
        if matches!(change.action, Action::Replace(_)) {
            replaced.push(change.clone());
        }
        plan.applies.push(change);
    }
    let wanted: BTreeSet<String> = stack.resources.iter().map(|d| d.addr.key()).collect();
    let mut deletes: Vec<Change> = replaced;
    for (key, e) in &state.resources {
        if wanted.contains(key) {
            continue;
        }
        if e.pending.is_none() && live.get(key) == Some(&Live::Missing) {
            plan.forget.push(key.clone());
            continue;
        }
        deletes.push(Change {
            addr: e.addr(),
            action: Action::Delete,
            desired: None,
        });
    }
    // Dependents first: every reference points to an earlier kind.
    deletes.sort_by(|a, b| {
        b.addr
            .kind
            .cmp(&a.addr.kind)
            .then(a.addr.name.cmp(&b.addr.name))
    });
    plan.deletes = deletes;
    Ok(plan)
}

/// The plan as shown to the user, in execution order.
pub fn render(plan: &Plan, file: &str) -> String {
    if plan.is_empty() {
        return format!("No changes: the cloud matches {file}.\n");
    }
    let mut out = String::new();
    let (mut add, mut change, mut replace, mut delete) = (0, 0, 0, 0);
    for c in &plan.deletes {
        match &c.action {
            Action::Replace(reasons) => {
                replace += 1;
                out.push_str(&format!("  -/+ {} ({})\n", c.addr, reasons.join("; ")));
            }
            _ => {
                delete += 1;
                out.push_str(&format!("  -   {}\n", c.addr));
            }
        }
    }
    for c in &plan.applies {
        match &c.action {
            Action::Create(note) => {
                add += 1;
                match note {
                    Some(n) => out.push_str(&format!("  +   {} ({n})\n", c.addr)),
                    None => out.push_str(&format!("  +   {}\n", c.addr)),
                }
            }
            Action::Update(fields) => {
                change += 1;
                out.push_str(&format!("  ~   {} ({})\n", c.addr, fields.join("; ")));
            }
            _ => {}
        }
    }
    out.push_str(&format!(
        "\nPlan: {add} to create, {change} to update in place, {replace} to replace, {delete} to delete.\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::spec::Desired;
    use crate::stack::state::Entry;
    use serde_json::json;

    fn desired(kind: ResKind, name: &str, inputs: Value, refs: Vec<(ResKind, &str)>) -> Desired {
        Desired {
            addr: Addr::new(kind, name),
            inputs,
            refs: refs
                .into_iter()
                .map(|(k, n)| crate::stack::spec::Ref {
                    to: Addr::new(k, n),
                    hard: true,
                })
                .collect(),
        }
    }

    fn recorded(state: &mut State, d: &Desired) {
        state.resources.insert(
            d.addr.key(),
            Entry {
                kind: d.addr.kind,
                name: d.addr.name.clone(),
                id: format!("id-{}", d.addr.name),
                inputs: d.inputs.clone(),
                deps: d.refs.iter().map(|r| r.to.key()).collect(),
                pending: None,
            },
        );
    }

    #[test]
    fn replacing_cascades_and_deletes_go_dependents_first() {
        let net = desired(ResKind::Network, "app", json!({"description": ""}), vec![]);
        let sub = desired(
            ResKind::Subnet,
            "app-v4",
            json!({"cidr": "10.0.0.0/24"}),
            vec![(ResKind::Network, "app")],
        );
        let vm = desired(
            ResKind::Server,
            "vm",
            json!({"flavor": "a"}),
            vec![(ResKind::Network, "app"), (ResKind::Subnet, "app-v4")],
        );
        let old = desired(ResKind::Network, "old", json!({}), vec![]);
        let old_vm = desired(
            ResKind::Server,
            "old-vm",
            json!({}),
            vec![(ResKind::Network, "old")],
        );
        let mut state = State::default();
        for d in [&net, &sub, &vm, &old, &old_vm] {
            recorded(&mut state, d);
        }
        let mut sub2 = sub.clone();
        sub2.inputs = json!({"cidr": "10.0.9.0/24"});
        let stack = Stack {
            name: "s".into(),
            resources: vec![net, sub2, vm],
        };
        let plan = diff(&stack, &state, &BTreeMap::new()).unwrap();
        let text = render(&plan, "f.yaml");
        assert_eq!(
            text,
            "  -   server old-vm\n  -/+ server vm (subnet app-v4 is replaced)\n  \
             -/+ subnet app-v4 (cidr: \"10.0.0.0/24\" -> \"10.0.9.0/24\")\n  -   network old\n\n\
             Plan: 0 to create, 0 to update in place, 2 to replace, 2 to delete.\n"
        );
        let unchanged = diff(
            &Stack {
                name: "s".into(),
                resources: vec![],
            },
            &State::default(),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            render(&unchanged, "f.yaml"),
            "No changes: the cloud matches f.yaml.\n"
        );
    }
}
