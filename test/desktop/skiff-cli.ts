/** The `skiff` command run from the TypeScript sources (`node --import tsx test/desktop/skiff-cli.ts …`), for tests that need a real process. */
import { main } from "../../src/cli/main.js";

process.exitCode = await main(process.argv);
