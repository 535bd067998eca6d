package host

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// pathToken serves the domain's latest committed token: what an HSM node
// that was away needs to rejoin (trent domain token), and what a dev
// cluster reads its domain state from. A token is sealed (its DKEK shares
// are wrapped to the members' agreement keys) and signed by the HSM that
// exported it, so it is served to anyone who can reach the host API, like
// the status.
const pathToken = "/trent/v1/host/token"

func (h *Host) tokenHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET "+pathToken, func(w http.ResponseWriter, r *http.Request) {
		_, token := h.fsm.State()
		if token == nil {
			http.Error(w, "host: no domain yet (this host has not applied a genesis token)", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(token)
	})
}

// FetchToken returns the latest domain token committed on the host at
// apiURL, parsed. The token's own checks (its encoding and the exporting
// HSM's signature) are the caller's to trust: an HSM node verifies it
// again under its anchor before it adopts it.
func FetchToken(ctx context.Context, apiURL string) ([]byte, *domain.Parsed, error) {
	raw, err := get(ctx, apiURL+pathToken, hsmcmd.MaxTokenSize)
	if err != nil {
		return nil, nil, err
	}
	p, err := domain.ParseToken(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("host: %s answered a malformed token: %w", apiURL, err)
	}
	return raw, p, nil
}

// deliveryOutcome logs what an HSM answered a token delivery when it
// changes: "not newer" (it holds the token's state already) is the normal
// answer and is not logged; the first other refusal (its anchor, another
// domain) or failure (it is down) is, then a reminder each
// deliveryReminder while it lasts, and the HSM's recovery.
func (h *Host) deliveryOutcome(i int, err error) {
	var re *session.RemoteError
	failing := true
	switch {
	case err == nil:
		failing = false
	case errors.As(err, &re) && errors.Is(err, session.ErrRefused) && strings.Contains(re.Message, hsmcmd.ErrStaleToken.Error()):
		failing = false
	}
	now := time.Now()
	h.mu.Lock()
	last := h.deliveries[i]
	logIt := failing != last.failing || failing && now.Sub(last.logged) >= deliveryReminder
	if logIt {
		h.deliveries[i] = delivery{failing: failing, logged: now}
	}
	h.mu.Unlock()
	switch {
	case logIt && failing:
		h.log.Warn("token delivery", "hsm", h.cfg.HSMs[i], "err", err)
	case logIt:
		h.log.Info("token delivery", "hsm", h.cfg.HSMs[i], "outcome", "the HSM holds the latest state again")
	}
}

// delivery is the logged state of token delivery to one HSM.
type delivery struct {
	failing bool
	logged  time.Time
}

// deliveryReminder is how often a lasting delivery failure is logged again.
const deliveryReminder = time.Minute
