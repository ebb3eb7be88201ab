#!/usr/bin/env node
// Entry point for `npx secp2psip <command>`: loads the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv.slice(2));
