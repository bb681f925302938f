//go:build tools

// Package tools pins helm for this project: `make helm` builds helm.sh/helm/v3/cmd/helm
// from this module into .tools/helm (a wrapper module, so go builds it like FerretDB).
package tools

import _ "helm.sh/helm/v3/cmd/helm"
