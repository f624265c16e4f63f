//! One self-contained HTML page of plots.
//!
//! Everything is inline: the SVG of each chart ([`super::svg`]), images as
//! `data:` URLs inside `<img>` (an SVG file shown this way cannot run a
//! script), and a short style sheet. No script, no font, nothing fetched:
//! the page works from a file, offline, and in a mail. Every text that
//! comes from a data file or a definition is escaped.

use base64::Engine;

use super::svg::{self, escape};
use super::{Content, Plot};

/// The page's frame around `body` (HTML already escaped), with `title`
/// (plain text) in `<title>` and `<h1>`.
pub fn document(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{t}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }}
h1 {{ font-size: 20px; }}
section {{ margin: 0 0 32px; padding: 12px 16px; border: 1px solid #e3e3e3; border-radius: 6px; }}
h2 {{ font-size: 16px; margin: 0 0 4px; }}
.meta {{ color: #666; font-size: 12px; margin: 0 0 8px; }}
.warning {{ color: #8a4b00; background: #fff4e0; padding: 4px 8px; border-radius: 4px; font-size: 13px; }}
figure {{ display: inline-block; margin: 8px 16px 8px 0; }}
figure img {{ max-width: 560px; border: 1px solid #eee; }}
figcaption {{ font-size: 12px; color: #555; }}
svg.plot {{ max-width: 100%; height: auto; }}
.wide {{ overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: right; }}
th {{ background: #f4f4f4; cursor: pointer; user-select: none; }}
td:first-child, th:first-child {{ text-align: left; }}
</style>
</head>
<body>
<h1>{t}</h1>
{body}</body>
</html>
"#,
        t = escape(title)
    )
}

/// The page of `plots`.
pub fn render(title: &str, plots: &[Plot]) -> String {
    let mut body = String::new();
    if plots.is_empty() {
        body.push_str("<p>No plots.</p>\n");
    }
    for plot in plots {
        body.push_str(&section(plot));
    }
    document(title, &body)
}

fn section(plot: &Plot) -> String {
    let mut out = format!(
        "<section id=\"{}\">\n<h2>{}</h2>\n",
        escape(&plot.id),
        escape(&plot.title)
    );
    let files: Vec<String> = {
        let mut f: Vec<String> = Vec::new();
        let names: Vec<String> = match &plot.content {
            Content::Chart { series } => series.iter().map(|s| s.file.to_string()).collect(),
            Content::Images { images } => images.iter().map(|i| i.file.to_string()).collect(),
        };
        for n in names {
            if !f.contains(&n) {
                f.push(n);
            }
        }
        f
    };
    let what = match &plot.content {
        Content::Chart { .. } => format!("template {}", plot.template.name()),
        Content::Images { .. } => "image".into(),
    };
    out.push_str(&format!(
        "<p class=\"meta\">{}{}{}</p>\n",
        escape(&plot.id),
        if files.is_empty() || files == [plot.id.clone()] {
            String::new()
        } else {
            format!(" · {}", escape(&files.join(", ")))
        },
        format_args!(" · {what}")
    ));
    for w in &plot.warnings {
        out.push_str(&format!(
            "<p class=\"warning\">warning: {}</p>\n",
            escape(w)
        ));
    }
    match &plot.content {
        Content::Chart { .. } => match svg::draw(plot, svg::Options::default()) {
            Some(svg) => {
                out.push_str(&svg);
                out.push('\n');
            }
            None => out.push_str("<p class=\"meta\">Nothing to draw.</p>\n"),
        },
        Content::Images { images } => {
            for image in images {
                out.push_str(&format!(
                    "<figure><img alt=\"{f}\" src=\"data:{};base64,{}\"><figcaption>{} · {f}</figcaption></figure>\n",
                    image.mime,
                    base64::engine::general_purpose::STANDARD.encode(&image.bytes),
                    escape(&image.rev),
                    f = escape(image.file.as_str()),
                ));
            }
        }
    }
    out.push_str("</section>\n");
    out
}
