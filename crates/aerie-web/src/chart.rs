//! Bar charts drawn on the server as SVG: no script, no library, readable in any browser and
//! in print. Every chart a page shows is also given as a table for screen readers, so the
//! SVG itself is marked as an image with a short description.

use std::fmt::Write as _;

/// One bar: its label (a day, a version) and its value.
pub struct Bar {
    pub label: String,
    pub value: u64,
}

const WIDTH: u32 = 640;
const HEIGHT: u32 = 180;
const AXIS: u32 = 20;

/// An SVG bar chart of `bars`, left to right, titled `title` for assistive technology. Text is
/// escaped; styling comes from the stylesheet's classes (the pages allow no inline style).
pub fn bars(title: &str, bars: &[Bar]) -> String {
    let highest = bars.iter().map(|bar| bar.value).max().unwrap_or(0).max(1);
    let count = bars.len().max(1) as u32;
    let slot = WIDTH / count;
    let gap = (slot / 5).min(4);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\" aria-label=\"{}\" \
         xmlns=\"http://www.w3.org/2000/svg\">",
        HEIGHT + AXIS,
        escape(title)
    );
    let _ = write!(
        svg,
        "<line class=\"chart-axis\" x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\"/>"
    );
    for (index, bar) in bars.iter().enumerate() {
        let height = (bar.value * u64::from(HEIGHT - 10) / highest) as u32;
        let x = index as u32 * slot + gap / 2;
        let _ = write!(
            svg,
            "<rect class=\"chart-bar\" x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{height}\">\
             <title>{}: {}</title></rect>",
            HEIGHT - height,
            slot.saturating_sub(gap).max(1),
            escape(&bar.label),
            bar.value
        );
    }
    // The first and last labels under the axis give the range.
    if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
        let _ = write!(
            svg,
            "<text class=\"chart-label\" x=\"0\" y=\"{}\">{}</text>",
            HEIGHT + AXIS - 4,
            escape(&first.label)
        );
        if bars.len() > 1 {
            let _ = write!(
                svg,
                "<text class=\"chart-label\" x=\"{WIDTH}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                HEIGHT + AXIS - 4,
                escape(&last.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// `text` safe inside SVG markup and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_to_the_highest_and_labels_are_escaped() {
        let svg = bars(
            "Downloads <per day>",
            &[
                Bar {
                    label: "2026-11-01".into(),
                    value: 5,
                },
                Bar {
                    label: "<script>".into(),
                    value: 10,
                },
            ],
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(
            svg.contains("aria-label=\"Downloads &lt;per day&gt;\""),
            "{svg}"
        );
        assert!(
            svg.contains("height=\"170\""),
            "the highest bar fills the chart: {svg}"
        );
        assert!(
            svg.contains("height=\"85\""),
            "half the highest is half as tall: {svg}"
        );
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("style="), "no inline style: {svg}");
    }

    #[test]
    fn an_empty_chart_draws_only_its_axis() {
        let svg = bars("Nothing", &[]);
        assert!(svg.contains("chart-axis"));
        assert!(!svg.contains("<rect"));
    }
}
