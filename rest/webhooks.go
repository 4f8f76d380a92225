package rest

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/csat/csat/webhooks"
)

// webhookRoutes mounts /webhooks; the caller has authenticated the key.
func (h *Handler) webhookRoutes(r chi.Router) {
	r.Route("/webhooks", func(r chi.Router) {
		r.With(h.limit("read")).Get("/", h.listWebhooks)
		r.With(h.limit("config")).Post("/", h.createWebhook)
		r.With(h.limit("read")).Get("/{id}", h.getWebhook)
		r.With(h.limit("config")).Patch("/{id}", h.updateWebhook)
		r.With(h.limit("config")).Delete("/{id}", h.deleteWebhook)
		r.With(h.limit("config")).Post("/{id}/rotate-secret", h.rotateWebhookSecret)
		r.With(h.limit("list")).Get("/{id}/deliveries", h.listWebhookDeliveries)
		r.With(h.limit("config")).Post("/{id}/deliveries/{delivery}/redeliver", h.redeliverWebhook)
	})
}

type webhookRequest struct {
	URL         *string   `json:"url"`
	EventTypes  *[]string `json:"event_types"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

func (h *Handler) decodeWebhook(w http.ResponseWriter, r *http.Request) (webhookRequest, error) {
	var raw map[string]json.RawMessage
	if err := decodeJSON(w, r, &raw); err != nil {
		return webhookRequest{}, err
	}
	var req webhookRequest
	return req, strictFields(raw, &req)
}

func (h *Handler) createWebhook(w http.ResponseWriter, r *http.Request) {
	req, err := h.decodeWebhook(w, r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	in := webhooks.EndpointInput{URL: deref(req.URL), Description: deref(req.Description), Enabled: req.Enabled}
	if req.EventTypes != nil {
		in.EventTypes = *req.EventTypes
	}
	res, err := h.Webhooks.Create(r.Context(), in)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := webhooks.EndpointToJSON(res.Endpoint)
	out.Secret = res.Secret
	WriteJSON(w, http.StatusCreated, out)
}

type webhookList struct {
	Data []webhooks.EndpointJSON `json:"data"`
}

func (h *Handler) listWebhooks(w http.ResponseWriter, r *http.Request) {
	eps, err := h.Webhooks.List(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := webhookList{Data: make([]webhooks.EndpointJSON, 0, len(eps))}
	for i := range eps {
		out.Data = append(out.Data, webhooks.EndpointToJSON(&eps[i]))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *Handler) getWebhook(w http.ResponseWriter, r *http.Request) {
	e, err := h.Webhooks.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, webhooks.EndpointToJSON(e))
}

func (h *Handler) updateWebhook(w http.ResponseWriter, r *http.Request) {
	req, err := h.decodeWebhook(w, r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	e, err := h.Webhooks.Update(r.Context(), chi.URLParam(r, "id"), webhooks.EndpointPatch{
		URL: req.URL, EventTypes: req.EventTypes, Description: req.Description, Enabled: req.Enabled,
	})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, webhooks.EndpointToJSON(e))
}

func (h *Handler) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := h.Webhooks.Delete(r.Context(), chi.URLParam(r, "id")); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	res, err := h.Webhooks.RotateSecret(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := webhooks.EndpointToJSON(res.Endpoint)
	out.Secret = res.Secret
	WriteJSON(w, http.StatusOK, out)
}

type deliveryList struct {
	Data   []webhooks.DeliveryJSON `json:"data"`
	Total  int                     `json:"total"`
	Limit  int                     `json:"limit"`
	Offset int                     `json:"offset"`
}

func (h *Handler) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := queryPage(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	page, err := h.Webhooks.Deliveries(r.Context(), chi.URLParam(r, "id"), limit, offset)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := deliveryList{Data: make([]webhooks.DeliveryJSON, 0, len(page.Deliveries)), Total: page.Total, Limit: limit, Offset: offset}
	for i := range page.Deliveries {
		out.Data = append(out.Data, webhooks.DeliveryToJSON(&page.Deliveries[i]))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *Handler) redeliverWebhook(w http.ResponseWriter, r *http.Request) {
	d, err := h.Webhooks.Redeliver(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "delivery"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusAccepted, webhooks.DeliveryToJSON(d))
}
