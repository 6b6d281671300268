// Reads a JSON array of {tex, display} from stdin; renders each with KaTeX in strict mode to
// MathML. Prints a JSON array of {error} or {mathml}, one per input. KaTeX's one leniency by
// default is kept: a character it has no metrics for (Greek in \text) is set in a fallback
// font, not refused.
const katex = require("katex");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const items = JSON.parse(input);
  const out = items.map(({ tex, display }) => {
    try {
      const mathml = katex.renderToString(tex, {
        displayMode: display,
        throwOnError: true,
        output: "mathml",
        strict: (code) => (code === "unknownSymbol" ? "ignore" : "error"),
      });
      return { mathml: mathml };
    } catch (err) {
      return { error: String(err.message || err) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
