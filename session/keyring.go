package session

import (
	"fmt"
	"sync"
)

// MemoryKeyRing is a KeyRing held in memory: key IDs mapped to domain keys
// (themselves token handles), one of them active. Safe for concurrent use.
type MemoryKeyRing struct {
	mu     sync.RWMutex
	keys   map[[KeyIDSize]byte]DomainKey
	active [KeyIDSize]byte
	has    bool
}

// NewMemoryKeyRing returns an empty key ring.
func NewMemoryKeyRing() *MemoryKeyRing {
	return &MemoryKeyRing{keys: map[[KeyIDSize]byte]DomainKey{}}
}

// Add retains key under id, making it the active key if active is set.
func (r *MemoryKeyRing) Add(id [KeyIDSize]byte, key DomainKey, active bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[id] = key
	if active {
		r.active, r.has = id, true
	}
}

// Drop stops retaining id; EKTs under it no longer open.
func (r *MemoryKeyRing) Drop(id [KeyIDSize]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.keys, id)
	if r.has && r.active == id {
		r.has = false
	}
}

// Active implements KeyRing.
func (r *MemoryKeyRing) Active() ([KeyIDSize]byte, DomainKey, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.has {
		return [KeyIDSize]byte{}, nil, ErrNoActiveKey
	}
	return r.active, r.keys[r.active], nil
}

// Key implements KeyRing.
func (r *MemoryKeyRing) Key(id [KeyIDSize]byte) (DomainKey, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w: %x", ErrKeyNotRetained, id)
	}
	return k, nil
}
