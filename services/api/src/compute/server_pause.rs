//! The `pause`, `unpause`, `suspend` and `resume` server actions, with
//! Nova's states: pause freezes a running server in memory (PAUSED),
//! suspend saves its memory to disk and stops it (SUSPENDED); unpause and
//! resume bring it back to ACTIVE where it left off. Like the power
//! actions they move the server into a task state with a conditional
//! update (a 409 names the state that blocks it), are refused on a locked
//! server, and complete when the host reports.

use crate::auth::{Action, Ctx};
use crate::compute::server_actions::power;
use crate::compute::servers::load;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::response::Response;
use cloud_model::instance::{TaskState, VmState};
use cloud_rpc::ComputeMsg;

/// Which of the four actions.
#[derive(Clone, Copy, Debug)]
pub enum Freeze {
    /// ACTIVE -> pausing -> PAUSED.
    Pause,
    /// PAUSED -> unpausing -> ACTIVE.
    Unpause,
    /// ACTIVE -> suspending -> SUSPENDED.
    Suspend,
    /// SUSPENDED -> resuming -> ACTIVE.
    Resume,
}

impl Freeze {
    /// The action's name, for instance actions and messages.
    fn name(self) -> &'static str {
        match self {
            Freeze::Pause => "pause",
            Freeze::Unpause => "unpause",
            Freeze::Suspend => "suspend",
            Freeze::Resume => "resume",
        }
    }

    /// The vm_state it starts from (Nova's `check_instance_state`).
    fn from(self) -> VmState {
        match self {
            Freeze::Pause | Freeze::Suspend => VmState::Active,
            Freeze::Unpause => VmState::Paused,
            Freeze::Resume => VmState::Suspended,
        }
    }

    fn task(self) -> TaskState {
        match self {
            Freeze::Pause => TaskState::Pausing,
            Freeze::Unpause => TaskState::Unpausing,
            Freeze::Suspend => TaskState::Suspending,
            Freeze::Resume => TaskState::Resuming,
        }
    }

    fn message(self, instance_id: cloud_model::InstanceId) -> ComputeMsg {
        match self {
            Freeze::Pause => ComputeMsg::Pause { instance_id },
            Freeze::Unpause => ComputeMsg::Unpause { instance_id },
            Freeze::Suspend => ComputeMsg::Suspend { instance_id },
            Freeze::Resume => ComputeMsg::Resume { instance_id },
        }
    }
}

/// Runs one of the four actions on server `id`.
pub async fn freeze(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    request_id: &str,
    which: Freeze,
) -> ApiResult<Response> {
    ctx.authorize(Action::ServerWrite)?;
    let inst = load(state, ctx, id).await?;
    power(
        state,
        ctx,
        &inst,
        request_id,
        which.name(),
        &[which.from()],
        &[],
        which.task(),
        which.message(inst.id),
    )
    .await
}
