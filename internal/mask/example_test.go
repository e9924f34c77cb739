package mask_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wardenhq/warden/internal/mask"
)

func ExampleMasker_MaskText() {
	set, _ := mask.New(mask.Config{}, []byte("deployment-key"))
	m, _ := set.Profile("default")
	rec := mask.NewRecorder()
	fmt.Println(m.MaskText("card ４１１１ 1111\u200b 1111 1111, mail Jane.Doe+x@Example.com", "$.note", rec))
	for _, a := range rec.Actions() {
		fmt.Println(a.Rule, a.Entity, a.Location, a.Count)
	}
	// Output:
	// card [REDACTED:CREDIT_CARD], mail [REDACTED:EMAIL_ADDRESS]
	// entities.CREDIT_CARD CREDIT_CARD $.note 1
	// entities.EMAIL_ADDRESS EMAIL_ADDRESS $.note 1
}

func ExampleMasker_WrapResponse() {
	set, _ := mask.New(mask.Config{}, []byte("deployment-key"))
	m, _ := set.Profile("default")
	rec := mask.NewRecorder()
	stream := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"call (415) 555\"}}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"-2671 now\"}}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" +
		"data: [DONE]\n\n"
	resp := &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"text/event-stream"}},
		Body:       io.NopCloser(strings.NewReader(stream)),
	}
	// In the gateway: ReverseProxy.ModifyResponse = func(r) error { return m.WrapResponse(r, rec, kind) }
	if err := m.WrapResponse(resp, rec, mask.StreamOpenAI); err != nil {
		fmt.Println("blocked:", err)
		return
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(out))
	fmt.Println(rec.Total(), "masked")
	// Output:
	// data: {"choices":[{"index":0,"delta":{"content":"call "}}]}
	//
	// data: {"choices":[{"index":0,"delta":{"content":"[REDACTED:PHONE_NUMBER] "}}]}
	//
	// data: {"choices":[{"index":0,"delta":{"content":"now"},"finish_reason":"stop"}]}
	//
	// data: [DONE]
	//
	// 1 masked
}
