package discovery

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hashicorp/consul/api"
)

// Retry pacing after Consul errors.
const (
	retryBase = 250 * time.Millisecond
	retryMax  = 10 * time.Second
	// requestTimeout bounds every Consul call that is not a blocking query: a frozen or partitioned agent
	// must cost a retry, never a stuck goroutine.
	requestTimeout = 5 * time.Second
)

// retryDelay is the wait before attempt n+1 after n consecutive failures (n >= 1): exponential from retryBase,
// capped at retryMax, with 20% jitter either way so that a fleet does not retry in step after an outage.
func retryDelay(n int, r *rand.Rand) time.Duration { return backoff(retryBase, n, r) }

// backoff is retryDelay starting from base.
func backoff(base time.Duration, n int, r *rand.Rand) time.Duration {
	d := base
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	d = min(d, retryMax)
	return jitter(d, 0.2, r)
}

// jitter returns d moved by up to frac of itself either way.
func jitter(d time.Duration, frac float64, r *rand.Rand) time.Duration {
	return d + time.Duration((r.Float64()*2-1)*frac*float64(d))
}

// httpStatus is the HTTP status of a Consul error, or 0 when there was no answer (transport error, timeout).
func httpStatus(err error) int {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// refused reports whether Consul answered and refused the request for good (a 4xx other than 404 and 429): a
// bad registration, a missing ACL. Retrying it at once helps nothing; it is reported and retried on the slow
// path. Everything else (no answer, 5xx, 429) means Consul is unreachable or busy.
func refused(err error) bool {
	c := httpStatus(err)
	return c >= 400 && c < 500 && c != http.StatusNotFound && c != http.StatusTooManyRequests
}

// notFound reports whether Consul said the thing does not exist (404), which for deregistration is success.
func notFound(err error) bool { return httpStatus(err) == http.StatusNotFound }

// sleepCtx waits d or until ctx ends; false means ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// query returns QueryOptions bound to ctx.
func query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}
