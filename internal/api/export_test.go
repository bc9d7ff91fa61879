package api

import "context"

// TransportError exposes the client's error wording to the tests.
func TransportError(c *Client, ctx context.Context, err error) error {
	return c.transportError(ctx, err)
}
