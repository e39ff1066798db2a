//! `report.html`: one self-contained page (inline CSS and SVG, no external URL, opens
//! offline), rendered by handlebars in strict mode with HTML escaping on from the fixed
//! template `templates/report.html.hbs`. The only unescaped insertion is the timeline SVG,
//! which [`crate::report::timeline`] builds with every text escaped.

use handlebars::Handlebars;

use crate::report::view::ReportView;
use crate::report::ReportError;

const TEMPLATE: &str = include_str!("templates/report.html.hbs");

/// A strict handlebars registry with one fixed template and the given escaping.
pub(crate) fn registry(
    name: &str,
    template: &str,
    escape: fn(&str) -> String,
) -> Result<Handlebars<'static>, ReportError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(escape);
    hb.register_template_string(name, template)
        .map_err(|e| ReportError::Template {
            template: name.into(),
            message: e.to_string(),
        })?;
    Ok(hb)
}

pub(crate) fn render_with(
    hb: &Handlebars<'_>,
    name: &str,
    view: &ReportView,
) -> Result<String, ReportError> {
    hb.render(name, view).map_err(|e| ReportError::Template {
        template: name.into(),
        message: e.to_string(),
    })
}

/// Renders `report.html`.
pub fn render(view: &ReportView) -> Result<String, ReportError> {
    let hb = registry("report.html", TEMPLATE, handlebars::html_escape)?;
    render_with(&hb, "report.html", view)
}
