/** Placeholder until the apply engine lands: prints the default istio-init rules. */
import type { Command } from './context.js';
import { captureCommand } from './capture.js';

export const DEFAULT_ISTIO_INIT_ARGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info'];

export const demoCommand: Command = async (_argv, ctx) =>
  captureCommand('demo')([...DEFAULT_ISTIO_INIT_ARGS, '--dry-run', '--ipv6=false'], ctx);
