// Mocha reporter: the spec reporter's output, then one closing line that CI reads:
//   N passed, N failed, N skipped
// A pending (skipped) test must print its reason before it skips (see test/support/netns.ts).
"use strict";
const Mocha = require("mocha");

class SummaryReporter extends Mocha.reporters.Spec {
  epilogue() {
    super.epilogue();
    const s = this.stats || {};
    process.stdout.write(`${s.passes || 0} passed, ${s.failures || 0} failed, ${s.pending || 0} skipped\n`);
  }
}
module.exports = SummaryReporter;
