//! The lending of contexts: the one place a service is handed the engine's
//! parts for a call or an event. A service gets a [`Context`]; the fallback
//! gets a [`FallbackContext`], which adds the reply machinery (the
//! [`Bridge`]). `lend!` writes a hook call once and type-checks it for
//! both, so nothing but the fallback can reach the bridge.

use std::time::Instant;

use super::host::Host;
use super::service::{Bridge, Call, Context, Fallback, FallbackContext, Service, Unit};
use super::Engine;

/// Runs `$body` with `$service` and `$cx` bound to service `$index` (the
/// fallback's is the index past the services) and the context it is lent:
/// a [`service::Context`] for a service, a [`service::FallbackContext`] for
/// the fallback. The body is written once and type-checked for each, so the
/// reply machinery reaches the fallback and nothing else, by type.
macro_rules! lend {
    ($engine:expr, $index:expr, $call:expr, $host:expr, $now:expr,
     |$service:ident, $cx:ident| $body:expr) => {{
        let (lent, cx, bridge) = $engine.loan($index, $call, $host, $now);
        match lent {
            $crate::engine::lend::Lent::Service($service) => {
                let mut cx = cx;
                let $cx = &mut cx;
                $body
            }
            $crate::engine::lend::Lent::Fallback($service) => {
                let $cx = &mut $crate::engine::service::FallbackContext { cx, bridge };
                $body
            }
        }
    }};
}

/// The service a context is lent with (see `lend!`).
pub(super) enum Lent<'a> {
    Service(&'a mut dyn Service),
    Fallback(&'a mut dyn Fallback),
}

impl Engine {
    /// The one place a context is made: the parts for service `index` (the
    /// fallback's is `services.len()`). `lend!` hands the [`Bridge`] to the
    /// fallback alone.
    pub(super) fn loan<'a>(
        &'a mut self,
        index: usize,
        call: Call<'a>,
        host: &'a mut dyn Host,
        now: Instant,
    ) -> (Lent<'a>, Context<'a>, Bridge<'a>) {
        let lent = match self.services.get_mut(index) {
            Some(service) => Lent::Service(service.as_mut()),
            None => Lent::Fallback(
                self.fallback
                    .as_mut()
                    .expect("an index past the services names the fallback")
                    .as_mut(),
            ),
        };
        let cx = Context {
            now,
            out: &mut self.out,
            host,
            drain: self.lifecycle.drain(),
            service: index,
            child_owner: &mut self.child_owner,
            pending: &mut self.pending,
            next_request: &mut self.next_request,
            call,
            deferred: false,
            owed: &mut self.owed,
        };
        let bridge = Bridge {
            joins: &mut self.joins,
            ready: &mut self.held_ready,
            shutdown: &mut self.requested,
        };
        (lent, cx, bridge)
    }

    /// Every service, the fallback last.
    pub(super) fn all_services(&self) -> impl Iterator<Item = &dyn Unit> {
        self.services
            .iter()
            .map(|s| s.as_ref() as &dyn Unit)
            .chain(self.fallback.as_deref().map(|f| f as &dyn Unit))
    }

    /// Every service, the fallback last (its index is `services.len()`).
    pub(super) fn service_count(&self) -> usize {
        self.services.len() + usize::from(self.fallback.is_some())
    }

    /// Lends the fallback its context, if there is one.
    pub(super) fn with_fallback<R>(
        &mut self,
        host: &mut dyn Host,
        now: Instant,
        f: impl FnOnce(&mut dyn Fallback, &mut FallbackContext<'_>) -> R,
    ) -> Option<R> {
        self.fallback.as_ref()?;
        let index = self.services.len();
        let (lent, cx, bridge) = self.loan(index, Call::None, host, now);
        match lent {
            Lent::Fallback(fallback) => Some(f(fallback, &mut FallbackContext { cx, bridge })),
            Lent::Service(_) => unreachable!("the index past the services is the fallback's"),
        }
    }
}
