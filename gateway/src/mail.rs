//! Outgoing mail (`[mail]`): reset links and notices, built by `lettre` (multipart text and
//! HTML, RFC 2047 subjects) and delivered by one thread of its own, so a slow or dead mail
//! server never holds a proxy worker or a request. Handlers hand a message to a bounded
//! queue and answer at once; what becomes of it is logged and counted
//! (`menshen_mail_total{kind,result}`), never shown to the requester: whether a mail went out
//! must not tell anyone whether an account exists.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use menshen_config::{MailConfig, MailTransport, SmtpSecurity};
use menshen_pages::MailText;

use crate::metrics::MAIL;

/// Messages waiting for the sending thread. A flood of reset requests is already bounded by
/// the per-account and per-address limits; past this the newest are dropped (and counted).
const QUEUE: usize = 1000;

/// One message for one person.
struct Outgoing {
    kind: &'static str,
    to: Mailbox,
    text: MailText,
}

/// The handle handlers send through; cheap to share.
pub struct Mailer {
    queue: SyncSender<Outgoing>,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    /// Checks the settings and starts the sending thread.
    pub fn start(config: &MailConfig) -> anyhow::Result<Self> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
        let transport = match &config.transport {
            MailTransport::Outbox(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("mail.outbox {}: cannot create it: {e}", dir.display())
                })?;
                Transport::Outbox(AsyncFileTransport::<Tokio1Executor>::new(dir))
            }
            MailTransport::Smtp(server) => {
                let tls = |host: &str| {
                    TlsParameters::new(host.to_owned())
                        .map_err(|e| anyhow::anyhow!("mail.smtp_url: TLS set-up failed: {e}"))
                };
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
                        .port(server.port)
                        .timeout(Some(config.timeout));
                builder = match server.security {
                    SmtpSecurity::StartTls => builder.tls(Tls::Required(tls(&server.host)?)),
                    SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls(&server.host)?)),
                    SmtpSecurity::None => builder.tls(Tls::None),
                };
                if let Some(user) = &server.user {
                    let password = server
                        .password
                        .as_ref()
                        .map(|p| p.0.clone())
                        .unwrap_or_default();
                    builder = builder.credentials(Credentials::new(user.clone(), password));
                }
                Transport::Smtp(builder.build())
            }
        };
        let (queue, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("menshen-mail".into())
            .spawn(move || deliver_all(rx, from, transport))?;
        Ok(Mailer { queue })
    }

    /// Queues one message to `to` (an address from the account database). Returns at once;
    /// false when the address is unusable or the queue is full (both logged and counted).
    pub fn send(&self, kind: &'static str, to: &str, text: MailText) -> bool {
        let Ok(to) = to.trim().parse::<Mailbox>() else {
            tracing::warn!(
                kind,
                "mail not sent: the address on file is not a mail address"
            );
            MAIL.with_label_values(&[kind, "failed"]).inc();
            return false;
        };
        match self.queue.try_send(Outgoing { kind, to, text }) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                tracing::error!(kind, "mail dropped: the sending queue is full or stopped");
                MAIL.with_label_values(&[kind, "dropped"]).inc();
                false
            }
        }
    }
}

/// The sending thread: one message at a time, each bounded by the transport's timeout.
fn deliver_all(rx: Receiver<Outgoing>, from: Mailbox, transport: Transport) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("mail thread cannot start: {e}");
            return;
        }
    };
    while let Ok(out) = rx.recv() {
        let kind = out.kind;
        let result = match build(&from, out) {
            Ok(message) => runtime.block_on(async {
                match &transport {
                    Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                        // lettre's errors name the server and the SMTP reply, never the
                        // credentials or the message body.
                        e.to_string()
                    }),
                    Transport::Outbox(t) => {
                        t.send(message).await.map(|_| ()).map_err(|e| e.to_string())
                    }
                }
            }),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::info!(kind, "mail sent");
                MAIL.with_label_values(&[kind, "sent"]).inc();
            }
            Err(e) => {
                tracing::error!(kind, "mail not delivered: {e}");
                MAIL.with_label_values(&[kind, "failed"]).inc();
            }
        }
    }
}

fn build(from: &Mailbox, out: Outgoing) -> Result<Message, String> {
    // A Message-ID in the sender's domain: mail servers score messages without one as spam.
    let id = format!("<{}@{}>", crate::random::token(), from.email.domain());
    Message::builder()
        .message_id(Some(id))
        .date_now()
        .from(from.clone())
        .to(out.to)
        .subject(out.text.subject)
        .multipart(MultiPart::alternative_plain_html(
            out.text.text,
            out.text.html,
        ))
        .map_err(|e| format!("message could not be built: {e}"))
}
