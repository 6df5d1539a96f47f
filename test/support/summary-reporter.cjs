// Mocha reporter: the spec reporter's output, then one closing line that CI reads:
//   N passed, N failed, N skipped
// A pending (skipped) test must print its reason; see test/support/skip.ts.
"use strict";
const Mocha = require("mocha");
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || {};
      // Printed after the spec reporter's epilogue (which also listens on EVENT_RUN_END).
      setImmediate(() => {
        process.stdout.write(`${s.passes || 0} passed, ${s.failures || 0} failed, ${s.pending || 0} skipped\n`);
      });
    });
  }
}
module.exports = SummaryReporter;
