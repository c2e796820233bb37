// Package crds only exists so that go.mod's requirement is a real dependency of this module.
package crds

import _ "sigs.k8s.io/gateway-api/apis/v1"
