// Package state will hold the Badger-backed stores: keyed operator state,
// window and session state, the durable room log used for replay, and
// checkpoints. It must never import netpoll/. Not yet implemented: see the
// state and durability issue.
package state
