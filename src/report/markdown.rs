//! `report.md`: the readable report as Markdown, from the fixed template
//! `templates/report.md.hbs`, in strict mode, with every value escaped by
//! [`sanitize::md`](crate::report::sanitize::md) (the registry's escape function), so data
//! cannot add table cells, links, HTML or headings.

use crate::report::html::{registry, render_with};
use crate::report::view::ReportView;
use crate::report::ReportError;

const TEMPLATE: &str = include_str!("templates/report.md.hbs");

/// Renders `report.md`.
pub fn render(view: &ReportView) -> Result<String, ReportError> {
    let hb = registry("report.md", TEMPLATE, crate::report::sanitize::md)?;
    render_with(&hb, "report.md", view)
}
