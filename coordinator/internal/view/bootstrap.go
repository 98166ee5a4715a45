package view

// BootstrapItem is one element of `fleet bootstrap -o json`: something the
// bootstrap made or found.
type BootstrapItem struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Created bool   `json:"created"`
	Note    string `json:"note,omitempty"`
}
