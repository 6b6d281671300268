// Reads a JSON array of {tex, display} from stdin; typesets each with MathJax 3 (TeX input
// with only the base and ams packages, as MathJax 2 and 3 load by default) to MathML.
// Prints a JSON array of {error} or {mathml}, one per input. An undefined macro is an error.
const { mathjax } = require("mathjax-full/js/mathjax.js");
const { TeX } = require("mathjax-full/js/input/tex.js");
const { liteAdaptor } = require("mathjax-full/js/adaptors/liteAdaptor.js");
const { RegisterHTMLHandler } = require("mathjax-full/js/handlers/html.js");
const { STATE } = require("mathjax-full/js/core/MathItem.js");
const { SerializedMmlVisitor } = require("mathjax-full/js/core/MmlTree/SerializedMmlVisitor.js");
require("mathjax-full/js/input/tex/base/BaseConfiguration.js");
require("mathjax-full/js/input/tex/ams/AmsConfiguration.js");

RegisterHTMLHandler(liteAdaptor());
const tex = new TeX({
  packages: ["base", "ams"],
  formatError: (jax, err) => {
    throw err;
  },
});
const doc = mathjax.document("", { InputJax: tex });
const visitor = new SerializedMmlVisitor();

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const items = JSON.parse(input);
  const out = items.map(({ tex: source, display }) => {
    try {
      const node = doc.convert(source, { display: display, end: STATE.CONVERT });
      return { mathml: visitor.visitTree(node) };
    } catch (err) {
      return { error: String(err.message || err) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
