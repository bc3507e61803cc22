// The shared test helpers: import { makeNetns, makeContainer, snapshot, ping, runCli, ... } from '../helpers/index.js'.

export * from './env.js'
export * from './netns.js'
export * from './docker.js'
export * from './snapshot.js'
export * from './cli.js'
export * from './ping.js'
export * from './process.js'
export * from './assert.js'
export * from './dnsmasq.js'
export * from './sockets.js'
export * from './gclock.js'
export * from './traffic.js'
