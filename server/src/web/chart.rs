//! A bar chart of redemptions per day as an SVG the server draws (no script, no library): a
//! title for screen readers, a bar per day with its count as a tooltip, and axis labels.

/// `days`: (day as days since the epoch, count), for consecutive days, oldest first.
pub fn per_day(title: &str, days: &[(i64, i64)]) -> String {
    let w = 720.0_f64;
    let h = 240.0_f64;
    let (left, bottom, top) = (40.0, 30.0, 10.0);
    let max = days.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let n = days.len().max(1) as f64;
    let slot = (w - left - 10.0) / n;
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{}</title>"#,
        escape(title)
    );
    let base = h - bottom;
    let scale = (base - top) / max as f64;
    // The axis and the top value.
    out.push_str(&format!(
        r##"<line x1="{left}" y1="{base}" x2="{}" y2="{base}" stroke="#4a5563"/><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#4a5563">{max}</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#4a5563">0</text>"##,
        w - 10.0,
        left - 4.0,
        top + 10.0,
        left - 4.0,
        base
    ));
    for (i, (day, count)) in days.iter().enumerate() {
        let x = left + i as f64 * slot + 1.0;
        let bh = *count as f64 * scale;
        let date = evoucher_core::time::rfc3339(day * 86_400);
        let date = &date[..10];
        out.push_str(&format!(
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#0b5cad"><title>{date}: {count}</title></rect>"##,
            base - bh,
            (slot - 2.0).max(1.0)
        ));
        // A label every week from the end (today is always labelled), none crowding another.
        let from_end = days.len() - 1 - i;
        if from_end % 7 == 0 {
            out.push_str(&format!(
                r##"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle" fill="#4a5563">{}</text>"##,
                x + slot / 2.0,
                h - 10.0,
                &date[5..]
            ));
        }
    }
    out.push_str("</svg>");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bar_per_day_and_an_accessible_title() {
        let svg = super::per_day(
            "Redemptions <per> day",
            &[(20_000, 3), (20_001, 0), (20_002, 7)],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("Redemptions &lt;per&gt; day"));
        assert!(svg.contains(">7<"));
    }
}
