//! The admin page's chart, drawn on the server as an inline `<svg>`: no script, no library,
//! nothing fetched (the page's CSP allows none).
//!
//! One bucket per minute over the last hour: logins as bars, live sessions as a line with a
//! dot per sample (a minute without a sample is a gap). It has a title, a legend, a y axis
//! with round ticks and clock times (UTC) on the x axis; for assistive technology the `<svg>`
//! is `role="img"` with an `aria-label` summing it up, a `<title>` and a `<desc>`, and every
//! bar and dot has a `<title>` with its minute and value (a tooltip too).

use std::time::{Duration, UNIX_EPOCH};

use maud::{html, Markup};
use session_store::Timestamp;

use crate::analytics::HourChart;

/// The drawing's size (its `viewBox`); the page scales it to its width.
pub const WIDTH: f64 = 720.0;
/// See [`WIDTH`].
pub const HEIGHT: f64 = 280.0;
/// The plot area inside the margins: left, top, right, bottom.
const PLOT: (f64, f64, f64, f64) = (48.0, 58.0, 704.0, 248.0);
/// The chart's title, also its accessible name.
pub const TITLE: &str = "Live sessions and logins, last hour (per minute, UTC)";

const LIVE_COLOR: &str = "#1f5fa8";
const LOGIN_COLOR: &str = "#f0a030";
const AXIS_COLOR: &str = "#555";
const GRID_COLOR: &str = "#e3e3e3";

/// Round y-axis bounds for values up to `max`: `(top, step)`, where `step` is 1, 2 or 5 times a
/// power of ten, `top` a multiple of it at or above `max`, with at most 5 steps.
pub fn y_scale(max: u64) -> (u64, u64) {
    let mut magnitude = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let step = magnitude.saturating_mul(factor);
            let top = max.div_ceil(step).max(1).saturating_mul(step);
            if top / step <= 5 || step == u64::MAX {
                return (top, step);
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// `HH:MM` of `at`, UTC.
pub fn clock(at: Timestamp) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(at.as_millis());
    // `2026-11-27T21:25:00Z` → `21:25`.
    humantime::format_rfc3339_seconds(time).to_string()[11..16].to_owned()
}

/// A coordinate as SVG text: one decimal, and never `NaN` or infinite.
fn n(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    format!("{v:.1}")
}

/// What the chart shows, in one sentence (its `aria-label` and `<desc>`).
pub fn summary(chart: &HourChart) -> String {
    let logins = chart.total_logins();
    let peak = chart.logins.iter().copied().max().unwrap_or(0);
    let samples: Vec<u64> = chart.live.iter().flatten().copied().collect();
    let live = match (samples.last(), samples.iter().min(), samples.iter().max()) {
        (Some(last), Some(min), Some(max)) => format!(
            "live sessions {last} at the latest sample, between {min} and {max} over {} sampled \
             minute(s)",
            samples.len()
        ),
        _ => "no live-session samples yet".to_owned(),
    };
    format!("{logins} login(s) in the last hour, at most {peak} in one minute; {live}")
}

/// The chart as an `<svg>` element (`id="activity-chart"`).
pub fn svg(chart: &HourChart) -> Markup {
    let (left, top, right, bottom) = PLOT;
    let buckets = chart.buckets().max(1);
    let slot = (right - left) / buckets as f64;
    let max = chart
        .live
        .iter()
        .flatten()
        .chain(chart.logins.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let (y_top, y_step) = y_scale(max);
    let y = |v: u64| bottom - (bottom - top) * (v.min(y_top) as f64 / y_top as f64);
    let x_mid = |i: usize| left + slot * (i as f64 + 0.5);
    let ticks: Vec<u64> = (0..=y_top / y_step).map(|k| k * y_step).collect();
    // Clock labels every 10 minutes, on bucket starts.
    let x_ticks: Vec<usize> = (0..buckets).step_by(10).collect();
    // The live line, split at minutes without a sample.
    let mut segments: Vec<Vec<(usize, u64)>> = Vec::new();
    let mut run = Vec::new();
    for (i, value) in chart.live.iter().enumerate() {
        match value {
            Some(v) => run.push((i, *v)),
            None if !run.is_empty() => segments.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        segments.push(run);
    }
    let label = format!("{TITLE}: {}.", summary(chart));
    let empty = chart.total_logins() == 0 && segments.is_empty();

    html! {
        svg id="activity-chart" xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width="100%"
            preserveAspectRatio="xMidYMid meet" aria-label=(label)
            font-family="system-ui, sans-serif" font-size="12" {
            title { (TITLE) }
            desc {
                (summary(chart)) ". Logins: live sessions by the minute of their login. Live \
                sessions: sampled by this process (its cleanup task and admin page views)."
            }
            rect x="0" y="0" width=(n(WIDTH)) height=(n(HEIGHT)) fill="#ffffff" {}
            text x=(n(left)) y="20" font-size="15" font-weight="bold" fill="#222" { (TITLE) }
            // Legend.
            g class="legend" {
                rect x=(n(left)) y="33" width="14" height="10" fill=(LOGIN_COLOR) {}
                text x=(n(left + 20.0)) y="42" fill="#222" { "Logins per minute" }
                line x1=(n(left + 160.0)) y1="38" x2=(n(left + 184.0)) y2="38"
                    stroke=(LIVE_COLOR) stroke-width="2" {}
                circle cx=(n(left + 172.0)) cy="38" r="3" fill=(LIVE_COLOR) {}
                text x=(n(left + 190.0)) y="42" fill="#222" { "Live sessions (sampled)" }
            }
            // Y axis: grid lines and round ticks.
            g class="y-axis" {
                @for tick in &ticks {
                    line x1=(n(left)) y1=(n(y(*tick))) x2=(n(right)) y2=(n(y(*tick)))
                        stroke=(GRID_COLOR) stroke-width="1" {}
                    text x=(n(left - 6.0)) y=(n(y(*tick) + 4.0)) text-anchor="end"
                        fill=(AXIS_COLOR) { (tick) }
                }
                line x1=(n(left)) y1=(n(top)) x2=(n(left)) y2=(n(bottom))
                    stroke=(AXIS_COLOR) stroke-width="1" {}
            }
            // X axis: clock times.
            g class="x-axis" {
                line x1=(n(left)) y1=(n(bottom)) x2=(n(right)) y2=(n(bottom))
                    stroke=(AXIS_COLOR) stroke-width="1" {}
                @for i in &x_ticks {
                    @let x = left + slot * *i as f64;
                    line x1=(n(x)) y1=(n(bottom)) x2=(n(x)) y2=(n(bottom + 4.0))
                        stroke=(AXIS_COLOR) stroke-width="1" {}
                    text x=(n(x)) y=(n(bottom + 17.0)) text-anchor="middle" fill=(AXIS_COLOR) {
                        (clock(chart.bucket_start(*i)))
                    }
                }
                text x=(n(right)) y=(n(bottom + 17.0)) text-anchor="end" fill=(AXIS_COLOR) {
                    "now"
                }
            }
            g class="logins" fill=(LOGIN_COLOR) {
                @for (i, count) in chart.logins.iter().enumerate() {
                    @if *count > 0 {
                        rect class="login-bar" x=(n(left + slot * (i as f64 + 0.15)))
                            y=(n(y(*count))) width=(n(slot * 0.7))
                            height=(n(bottom - y(*count))) {
                            title { (clock(chart.bucket_start(i))) " UTC: " (count) " login(s)" }
                        }
                    }
                }
            }
            g class="live" stroke=(LIVE_COLOR) fill=(LIVE_COLOR) {
                @for segment in &segments {
                    @if segment.len() > 1 {
                        polyline class="live-line" fill="none" stroke-width="2"
                            stroke-linejoin="round"
                            points=(segment.iter()
                                .map(|(i, v)| format!("{},{}", n(x_mid(*i)), n(y(*v))))
                                .collect::<Vec<_>>()
                                .join(" ")) {}
                    }
                    @for (i, v) in segment {
                        circle class="live-point" cx=(n(x_mid(*i))) cy=(n(y(*v))) r="3"
                            stroke="none" {
                            title {
                                (clock(chart.bucket_start(*i))) " UTC: " (v) " live session(s)"
                            }
                        }
                    }
                }
            }
            @if empty {
                text x=(n((left + right) / 2.0)) y=(n((top + bottom) / 2.0))
                    text-anchor="middle" fill=(AXIS_COLOR) { "No data in the last hour yet" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::{MINUTES, MINUTE_MS};

    const START: u64 = 1_800_000_000_000 - 59 * MINUTE_MS;

    fn chart(live: Vec<Option<u64>>, logins: Vec<u64>) -> HourChart {
        HourChart {
            start: Timestamp(START),
            live,
            logins,
        }
    }

    fn number(node: roxmltree::Node<'_, '_>, name: &str) -> f64 {
        let text = node
            .attribute(name)
            .unwrap_or_else(|| panic!("{name} on {node:?}"));
        let v: f64 = text.parse().unwrap_or_else(|_| panic!("{name}={text}"));
        assert!(v.is_finite(), "{name}={text}");
        v
    }

    fn within_plot(x: f64, y: f64) {
        let (left, top, right, bottom) = PLOT;
        assert!((left..=right).contains(&x), "x {x} in the plot");
        assert!((top..=bottom).contains(&y), "y {y} in the plot");
    }

    /// Renders `chart`, parses it as XML and checks what every chart must have; returns the
    /// document text.
    fn check(chart: &HourChart) -> String {
        let text = svg(chart).into_string();
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("well-formed XML: {e}\n{text}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        assert_eq!(root.attribute("role"), Some("img"));
        assert_eq!(root.attribute("viewBox"), Some("0 0 720 280"));
        let label = root.attribute("aria-label").expect("aria-label");
        assert!(label.starts_with(TITLE), "{label}");
        let first = root.first_element_child().expect("children");
        assert_eq!(first.tag_name().name(), "title", "<title> comes first");
        assert_eq!(first.text(), Some(TITLE));
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        for wanted in [
            TITLE,
            "Logins per minute",
            "Live sessions (sampled)",
            "now",
            "0",
        ] {
            assert!(texts.contains(&wanted), "{wanted:?} in {texts:?}");
        }
        // Every coordinate and size below the root is a finite number inside the drawing.
        for node in root.descendants().filter(|n| n.is_element() && *n != root) {
            for attr in node.attributes() {
                let limit = match attr.name() {
                    "x" | "x1" | "x2" | "cx" | "width" => WIDTH,
                    "y" | "y1" | "y2" | "cy" | "height" => HEIGHT,
                    _ => continue,
                };
                let v = number(node, attr.name());
                assert!(
                    (0.0..=limit).contains(&v),
                    "{}={v} on {node:?}",
                    attr.name()
                );
            }
        }
        text
    }

    #[test]
    fn y_scale_is_round_and_covers_the_maximum() {
        assert_eq!(y_scale(0), (1, 1));
        assert_eq!(y_scale(1), (1, 1));
        assert_eq!(y_scale(3), (3, 1));
        assert_eq!(y_scale(5), (5, 1));
        assert_eq!(y_scale(6), (6, 2));
        assert_eq!(y_scale(11), (15, 5));
        assert_eq!(y_scale(48), (50, 10));
        assert_eq!(y_scale(9_999), (10_000, 2_000));
        for max in (0..2_000).chain([123_456_789, 10_u64.pow(18)]) {
            let (top, step) = y_scale(max);
            assert!(top >= max && top % step == 0 && top / step <= 5, "{max}");
        }
        // At the very end of the range the top saturates, but still covers the maximum.
        for max in [u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let (top, step) = y_scale(max);
            assert!(top >= max && step > 0 && top / step <= 5, "{max}");
        }
    }

    #[test]
    fn renders_both_series_inside_the_plot() {
        let mut live = vec![None; MINUTES];
        live[10] = Some(4);
        live[11] = Some(6);
        live[12] = Some(5);
        live[40] = Some(2); // a lone sample after a gap
        live[59] = Some(3);
        let mut logins = vec![0; MINUTES];
        logins[11] = 2;
        logins[59] = 1;
        let chart = chart(live, logins);
        let text = check(&chart);
        let doc = roxmltree::Document::parse(&text).unwrap();

        let bars: Vec<_> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("login-bar"))
            .collect();
        assert_eq!(bars.len(), 2);
        let (_, _, _, bottom) = PLOT;
        for bar in &bars {
            let (x, y, h) = (number(*bar, "x"), number(*bar, "y"), number(*bar, "height"));
            within_plot(x, y);
            assert!(
                h > 0.0 && (y + h - bottom).abs() < 0.2,
                "bars stand on the x axis"
            );
        }
        // Bar heights are proportional: 2 logins twice as tall as 1.
        let heights: Vec<f64> = bars.iter().map(|b| number(*b, "height")).collect();
        assert!((heights[0] - 2.0 * heights[1]).abs() < 0.3, "{heights:?}");

        let lines: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "one line for minutes 10-12; the lone samples are dots"
        );
        let points: Vec<(f64, f64)> = lines[0]
            .attribute("points")
            .unwrap()
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(points.len(), 3);
        for (x, y) in &points {
            within_plot(*x, *y);
        }
        assert!(points.windows(2).all(|w| w[0].0 < w[1].0), "left to right");
        let dots = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("live-point"))
            .count();
        assert_eq!(dots, 5);
        // The highest value (6) touches the top of the y axis, which is labelled 6.
        assert!((points[1].1 - PLOT.1).abs() < 0.2);
        assert!(text.contains(">6</text>"));
        assert!(text.contains(" UTC: 2 login(s)</title>"));
        assert!(text.contains("3 login(s) in the last hour, at most 2 in one minute"));
        assert!(text.contains("live sessions 3 at the latest sample, between 2 and 6"));
        assert!(!text.contains("No data"));
    }

    #[test]
    fn an_empty_hour_is_still_a_chart() {
        let text = check(&chart(vec![None; MINUTES], vec![0; MINUTES]));
        assert!(text.contains("No data in the last hour yet"));
        assert!(text.contains("no live-session samples yet"));
        assert!(!text.contains("polyline") && !text.contains("login-bar"));
        // Mismatched or empty series do not panic either.
        check(&chart(vec![Some(1)], vec![]));
        check(&chart(vec![], vec![]));
    }

    #[test]
    fn huge_values_stay_finite_and_in_range() {
        let chart = chart(vec![Some(u64::MAX); MINUTES], vec![u64::MAX / 2; MINUTES]);
        check(&chart);
    }

    #[test]
    fn x_labels_are_utc_clock_times_every_ten_minutes() {
        let text = check(&chart(vec![None; MINUTES], vec![0; MINUTES]));
        // START is 59 minutes before 1_800_000_000_000 ms = 2027-01-15T08:00:00Z.
        assert_eq!(clock(Timestamp(1_800_000_000_000)), "08:00");
        for label in ["07:01", "07:11", "07:21", "07:31", "07:41", "07:51"] {
            assert!(text.contains(&format!(">{label}</text>")), "{label}");
        }
    }
}
