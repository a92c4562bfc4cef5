//! The frame every live page shares (`/ui` on the seeder and the shim): one stylesheet, one
//! script of helpers, and the first view inlined so the first paint already holds data.
//!
//! A page is a self-contained HTML template (no CDN: it must work offline) with three markers
//! that [`render`] fills: `/*FRAME_STYLE*/`, `/*FRAME_SCRIPT*/` and `FIRST_VIEW_JSON`.

/// The shared stylesheet.
const STYLE: &str = include_str!("page/frame.css");
/// The shared helpers: formatting, `show`, the rate chart, copy buttons, `startPage`.
const SCRIPT: &str = include_str!("page/frame.js");

/// `template` with the frame and `first_view` (the JSON the page polls, as of now) filled in.
pub fn render(template: &str, first_view: &str) -> String {
    // Inside `<script type="application/json">`, `</script>` in a string would end the element:
    // `<` only occurs inside JSON strings, where `\u003c` means the same.
    let inlined = first_view.replace('<', "\\u003c");
    template.replace("/*FRAME_STYLE*/", STYLE).replace("/*FRAME_SCRIPT*/", SCRIPT).replace("FIRST_VIEW_JSON", &inlined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_and_the_first_view_are_filled_in() {
        let template = "<style>/*FRAME_STYLE*/</style><script>/*FRAME_SCRIPT*/</script>\
                        <script id=\"first-view\" type=\"application/json\">FIRST_VIEW_JSON</script>";
        let page = render(template, r#"{"name":"</script><b>"}"#);
        assert!(page.contains("function startPage(") && page.contains("--bt:"));
        assert!(page.contains(r#"{"name":"\u003c/script>\u003cb>"}"#), "{page}");
        assert_eq!(page.matches("</script>").count(), 2, "the view cannot close its own element");
    }
}
