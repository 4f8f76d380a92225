package graph

import (
	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/graph/model"
	"github.com/csat/csat/webhooks"
)

// The webhook resolvers call one webhooks.Service method each, like REST
// (rest/webhooks.go); these shape arguments and results.

// listOf keeps an absent list (nil) apart from an empty one.
func listOf(l []string) *[]string {
	if l == nil {
		return nil
	}
	return &l
}

func endpointInputOf(in model.CreateWebhookEndpointInput) webhooks.EndpointInput {
	return webhooks.EndpointInput{URL: in.URL, EventTypes: in.EventTypes, Description: str(in.Description), Enabled: in.Enabled}
}

func endpointPatchOf(in model.UpdateWebhookEndpointInput) webhooks.EndpointPatch {
	return webhooks.EndpointPatch{URL: in.URL, EventTypes: listOf(in.EventTypes), Description: in.Description, Enabled: in.Enabled}
}

// endpointOrNull answers null, not an error, for an endpoint the caller
// cannot see.
func endpointOrNull(e *db.WebhookEndpoint, err error) (*db.WebhookEndpoint, error) {
	if errs.CodeOf(err) == errs.NotFound {
		return nil, nil
	}
	return e, err
}

func deliveryPage(p webhooks.DeliveryPage, err error) (*webhooks.DeliveryPage, error) {
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func deleted(id string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return id, nil
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}
