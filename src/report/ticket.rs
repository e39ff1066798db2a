//! `support_ticket.md`: text ready to paste into the exchange's support form, in English and,
//! when the exchange's home language is Korean, Korean first (the language comes from the
//! exchange's descriptor): the account, the masked key, the window, every flagged order id with its
//! UTC and exchange-local time, the estimated loss, and the requests (source IPs of the
//! flagged API calls, counterparty accounts of the fills, freezing them), plus what to attach.
//! Rendered like `report.md` (strict, Markdown escaping) from `templates/support_ticket.md.hbs`.

use crate::report::html::{registry, render_with};
use crate::report::view::ReportView;
use crate::report::ReportError;

const TEMPLATE: &str = include_str!("templates/support_ticket.md.hbs");

/// Renders `support_ticket.md`.
pub fn render(view: &ReportView) -> Result<String, ReportError> {
    let hb = registry("support_ticket.md", TEMPLATE, crate::report::sanitize::md)?;
    render_with(&hb, "support_ticket.md", view)
}
