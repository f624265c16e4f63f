//! A Vega-Lite (v5) spec for each plot, with its data inline, for `pipe
//! plots show --json`: other tools (DVC's VS Code extension, a notebook,
//! vega-embed) render what pipe draws. The encodings follow DVC's
//! templates of the same names.

use serde_json::{json, Value as Json};

use super::request::Template;
use super::{Content, Plot};

/// The spec of `plot`; `None` for images.
pub fn spec(plot: &Plot) -> Option<Json> {
    let Content::Chart { series } = &plot.content else {
        return None;
    };
    let values: Vec<Json> = series
        .iter()
        .flat_map(|s| {
            s.points.iter().map(move |p| {
                let mut v = json!({"rev": s.name, plot_field(&s.x): p.x, plot_field(&s.y): p.y});
                if let Some(c) = p.count {
                    v["count"] = json!(c);
                }
                v
            })
        })
        .collect();
    let x = series.first().map(|s| plot_field(&s.x)).unwrap_or_default();
    let y = series.first().map(|s| plot_field(&s.y)).unwrap_or_default();
    let numeric_x = series
        .iter()
        .flat_map(|s| &s.points)
        .all(|p| p.x.number().is_some());
    let x_type = if numeric_x { "quantitative" } else { "nominal" };
    let color = json!({"field": "rev", "type": "nominal", "title": null});
    let tooltip = json!([{"field": "rev"}, {"field": x}, {"field": y}]);
    let (mark, encoding) = match plot.template {
        Template::Linear | Template::Simple | Template::Scatter | Template::Smooth => {
            let mark = match plot.template {
                Template::Linear => json!({"type": "line", "point": true, "tooltip": true}),
                Template::Simple | Template::Smooth => json!({"type": "line", "tooltip": true}),
                _ => json!({"type": "point", "tooltip": true}),
            };
            (
                mark,
                json!({
                    "x": {"field": x, "type": x_type, "title": plot.x_label},
                    "y": {"field": y, "type": "quantitative", "title": plot.y_label, "scale": {"zero": false}},
                    "color": color, "tooltip": tooltip,
                }),
            )
        }
        Template::Confusion | Template::ConfusionNormalized => (
            json!({"type": "rect", "tooltip": true}),
            json!({
                "x": {"field": x, "type": "nominal", "title": plot.x_label},
                "y": {"field": y, "type": "nominal", "title": plot.y_label},
                "color": {"aggregate": "sum", "field": "count", "type": "quantitative"},
                "facet": {"field": "rev", "type": "nominal", "title": null},
            }),
        ),
        Template::BarHorizontal | Template::BarHorizontalSorted => (
            json!({"type": "bar", "tooltip": true}),
            json!({
                "x": {"field": x, "type": "quantitative", "title": plot.x_label},
                "y": {"field": y, "type": "nominal", "title": plot.y_label,
                      "sort": if plot.template == Template::BarHorizontalSorted { json!("-x") } else { json!(null) }},
                "yOffset": {"field": "rev"},
                "color": color,
            }),
        ),
    };
    let mut spec = json!({
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": plot.title,
        "width": 560,
        "height": 340,
        "data": {"values": values},
        "mark": mark,
        "encoding": encoding,
    });
    if plot.template == Template::Smooth {
        spec["transform"] = json!([{"loess": y, "on": x, "groupby": ["rev"]}]);
    }
    if plot.template == Template::ConfusionNormalized {
        spec["transform"] = json!([
            {"joinaggregate": [{"op": "sum", "field": "count", "as": "row_total"}], "groupby": ["rev", y]},
            {"calculate": "datum.count / datum.row_total", "as": "count"},
        ]);
    }
    Some(spec)
}

/// A field name as Vega-Lite reads it: dots and brackets escaped.
fn plot_field(name: &str) -> String {
    name.replace('.', "\\.")
        .replace('[', "\\[")
        .replace(']', "\\]")
}
