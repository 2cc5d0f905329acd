//! Operator webhooks (placeholder until the delivery module lands in this directory).

#[derive(Debug, Clone)]
pub enum WebhookEvent {
    ServerDraining { deadline_unix_ms: u64 },
}

#[derive(Debug, Default)]
pub struct FlushReport {}

#[derive(Clone)]
pub struct Webhooks {}

impl Webhooks {
    pub fn emit(&self, _event: WebhookEvent) {}
    pub async fn flush(&self, _deadline: tokio::time::Instant) -> FlushReport {
        FlushReport {}
    }
}
