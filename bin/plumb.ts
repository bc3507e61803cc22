// plumb's executable: argv -> main() -> exit code (everything else lives in lib/cli).
import { main } from '../lib/cli/index.js'

process.exitCode = await main(process.argv.slice(2))
