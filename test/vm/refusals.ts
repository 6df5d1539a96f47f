/** Shared by the argv-builder tests: one `it` per bad config, each expecting a `VmConfigError` whose message matches. */
import { expect } from "chai";
import { VmConfigError } from "../../src/vm/boot-config.js";

export function itRefuses<C>(build: (cfg: C) => string[], base: C, cases: Array<[string, Partial<C>, RegExp]>): void {
  for (const [what, change, msg] of cases) {
    it(`refuses ${what} with a VmConfigError naming the field`, () => {
      let err: unknown;
      try {
        build({ ...base, ...change });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(VmConfigError);
      expect((err as Error).message).to.match(msg);
    });
  }
}
