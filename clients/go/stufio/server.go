package stufio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	eventsv1 "github.com/stufio/stufio-sidecar/clients/go/gen/stufio/events/v1"
)

// DefaultAddress is DESIGN.md §4's default handler.address: a socket shared with the sidecar in the pod.
const DefaultAddress = "unix:///var/run/stufio/handler.sock"

// Server hosts handlers behind stufio.events.v1.EventHandler, next to grpc.health.v1.Health.
type Server struct {
	name      string
	version   string
	providers []MetricsProvider
	grace     time.Duration
	log       *slog.Logger
	grpcOpts  []grpc.ServerOption

	mu   sync.Mutex
	subs []Subscription
}

// Option configures a Server.
type Option func(*Server)

// WithName sets the name reported by Describe (default: the executable's name).
func WithName(name string) Option { return func(s *Server) { s.name = name } }

// WithVersion sets the version reported by Describe.
func WithVersion(version string) Option { return func(s *Server) { s.version = version } }

// WithMetricsProvider adds providers whose per-event metrics join every response.
func WithMetricsProvider(providers ...MetricsProvider) Option {
	return func(s *Server) { s.providers = append(s.providers, providers...) }
}

// WithGracePeriod bounds how long a stopping server waits for calls in flight (default 10s).
func WithGracePeriod(d time.Duration) Option { return func(s *Server) { s.grace = d } }

// WithLogger replaces slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithGRPCOptions passes options to grpc.NewServer (limits, interceptors, credentials).
func WithGRPCOptions(opts ...grpc.ServerOption) Option {
	return func(s *Server) { s.grpcOpts = append(s.grpcOpts, opts...) }
}

func NewServer(opts ...Option) *Server {
	s := &Server{name: filepath.Base(os.Args[0]), grace: 10 * time.Second, log: slog.Default()}
	for _, opt := range opts {
		opt(s)
	}
	seen := map[string]bool{}
	for _, p := range s.providers {
		if seen[p.Name()] {
			panic(fmt.Sprintf("stufio: two metrics providers named %q", p.Name()))
		}
		seen[p.Name()] = true
	}
	return s
}

// Subscribe registers fn for an event type (NATS wildcards allowed). It panics on an invalid pattern,
// as http.HandleFunc does: that is a programming error.
func (s *Server) Subscribe(eventType string, fn HandlerFunc, opts ...SubscribeOption) {
	sub := Subscription{EventType: eventType, Handler: fn}
	for _, opt := range opts {
		opt(&sub)
	}
	s.Add(sub)
}

// Add registers a subscription; it panics on an invalid pattern or a nil handler.
func (s *Server) Add(sub Subscription) {
	if err := checkPattern(sub.EventType); err != nil {
		panic(err)
	}
	if sub.Handler == nil {
		panic(fmt.Sprintf("stufio: nil handler for %q", sub.EventType))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, sub)
}

// Serve listens on address (unix:///path.sock, host:port or :port; empty: $STUFIO_HANDLER_ADDRESS, else
// DefaultAddress) and serves until ctx is done, then stops gracefully.
func (s *Server) Serve(ctx context.Context, address string) error {
	lis, err := Listen(address)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, lis)
}

// ServeListener serves on lis until ctx is done. Stopping first reports NOT_SERVING, so the sidecar
// pauses, then lets calls in flight finish within the grace period.
func (s *Server) ServeListener(ctx context.Context, lis net.Listener) error {
	s.mu.Lock()
	subs := append([]Subscription(nil), s.subs...)
	s.mu.Unlock()
	if len(subs) == 0 {
		lis.Close()
		return errors.New("stufio: no subscriptions: call Subscribe before Serve")
	}

	gs := grpc.NewServer(s.grpcOpts...)
	hs := health.NewServer()
	eventsv1.RegisterEventHandlerServer(gs, &service{server: s, subs: subs})
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(eventsv1.EventHandler_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)

	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	s.log.Info("serving", "handler", s.name, "address", lis.Addr().String(), "subscriptions", len(subs))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(s.grace):
		gs.Stop()
		<-stopped
	}
	s.log.Info("stopped", "handler", s.name)
	return <-served
}

// Serve hosts subs on address until ctx is done or the process gets SIGTERM or SIGINT, then stops
// gracefully. For options, use NewServer.
func Serve(ctx context.Context, address string, subs ...Subscription) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	s := NewServer()
	for _, sub := range subs {
		s.Add(sub)
	}
	return s.Serve(ctx, address)
}

// Run is Serve for a main function: it serves subs on $STUFIO_HANDLER_ADDRESS (else DefaultAddress)
// until SIGTERM or SIGINT, then stops gracefully and returns; if serving fails it logs the error and
// exits with status 1, as log.Fatal does.
func Run(subs ...Subscription) {
	if err := Serve(context.Background(), "", subs...); err != nil {
		slog.Error("stufio: serve failed", "error", err)
		os.Exit(1)
	}
}

// Listen binds an address in any of the forms Serve accepts. A stale unix socket file left by a
// previous run is removed, and its directory created.
func Listen(address string) (net.Listener, error) {
	if address == "" {
		address = os.Getenv("STUFIO_HANDLER_ADDRESS")
	}
	if address == "" {
		address = DefaultAddress
	}
	if path, ok := strings.CutPrefix(address, "unix:"); ok {
		path = strings.TrimPrefix(path, "//")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if info, err := os.Stat(path); err == nil && info.Mode().Type() == fs.ModeSocket {
			os.Remove(path)
		}
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", address)
}

// DialAddress is the address a client on this host dials to reach lis: unix://path for a unix socket,
// 127.0.0.1:port for a wildcard TCP listener (":0"), else the listener's own address.
func DialAddress(lis net.Listener) string {
	switch addr := lis.Addr().(type) {
	case *net.UnixAddr:
		return "unix://" + addr.Name
	case *net.TCPAddr:
		if addr.IP == nil || addr.IP.IsUnspecified() {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))
		}
	}
	return lis.Addr().String()
}

type service struct {
	eventsv1.UnimplementedEventHandlerServer
	server *Server
	subs   []Subscription
}

func (h *service) Handle(ctx context.Context, msg *eventsv1.EventMessage) (*eventsv1.HandlerResponse, error) {
	resp, err := h.handle(ctx, msg)
	if err != nil {
		st := statusOf(err)
		h.logFailure(msg, st)
		return nil, st.Err()
	}
	return resp, nil
}

func (h *service) HandleStream(stream eventsv1.EventHandler_HandleStreamServer) error {
	ctx := stream.Context()
	out := make(chan *eventsv1.HandlerResponse)
	recvErr := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		defer func() {
			wg.Wait()
			close(out)
		}()
		for {
			msg, err := stream.Recv()
			if err != nil {
				if err != io.EOF {
					recvErr <- err
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := h.handle(ctx, msg)
				if err != nil {
					// A stream message has no status of its own: the code travels in error_code, and the
					// sidecar treats it exactly like a unary call that failed with it.
					st := statusOf(err)
					h.logFailure(msg, st)
					resp = &eventsv1.HandlerResponse{ErrorCode: uint32(st.Code()), ErrorMessage: st.Message()}
				}
				resp.EventId = msg.GetEventId()
				select {
				case out <- resp:
				case <-ctx.Done():
				}
			}()
		}
	}()
	for resp := range out {
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	select {
	case err := <-recvErr:
		return err
	default:
		return nil
	}
}

func (h *service) Describe(context.Context, *eventsv1.DescribeRequest) (*eventsv1.HandlerDescription, error) {
	desc := &eventsv1.HandlerDescription{Name: h.server.name, Version: h.server.version, Sdk: "go"}
	for i := range h.subs {
		desc.Subscriptions = append(desc.Subscriptions, h.subs[i].proto())
	}
	return desc, nil
}

func (h *service) route(msg *eventsv1.EventMessage) []*Subscription {
	var subs []*Subscription
	for i := range h.subs {
		if h.subs[i].matches(msg.GetEventType()) {
			subs = append(subs, &h.subs[i])
		}
	}
	// Each sidecar subscription delivers the event on its own; run only the subscriptions it names, so
	// that two subscriptions matching one event do not run each handler twice.
	if consumer := msg.GetDelivery().GetConsumer(); consumer != "" && len(subs) > 1 {
		var named []*Subscription
		for _, sub := range subs {
			if sub.Durable == consumer || sub.QueueGroup == consumer {
				named = append(named, sub)
			}
		}
		if len(named) > 0 {
			subs = named
		}
	}
	return subs
}

func (h *service) handle(ctx context.Context, msg *eventsv1.EventMessage) (*eventsv1.HandlerResponse, error) {
	subs := h.route(msg)
	if len(subs) == 0 {
		return nil, status.Errorf(codes.Unimplemented, "no handler for event type %q", msg.GetEventType())
	}
	for _, p := range h.server.providers {
		ctx = p.Begin(ctx)
	}
	ev := newEvent(msg)
	responses := make([]*Response, 0, len(subs))
	for _, sub := range subs {
		resp, err := h.call(ctx, sub.Handler, ev)
		if err != nil {
			return nil, err
		}
		if resp == nil {
			resp = &Response{}
		}
		responses = append(responses, resp)
	}
	out, err := merge(responses).Proto()
	if err != nil {
		// DESIGN.md §3: an invalid response is dead-lettered, retrying would only repeat it.
		return nil, Permanent(fmt.Errorf("invalid handler response: %w", err))
	}
	for _, p := range h.server.providers {
		for key, v := range p.Metrics(ctx) {
			name := p.Name() + "_" + key
			if out.Metrics == nil {
				out.Metrics = &eventsv1.HandlerMetrics{Values: map[string]*structpb.Value{}}
			}
			if _, taken := out.Metrics.Values[name]; taken || v == nil {
				continue
			}
			value, err := toValue(v)
			if err != nil {
				h.server.log.Warn("metric dropped", "provider", p.Name(), "metric", key, "error", err)
				continue
			}
			out.Metrics.Values[name] = value
		}
	}
	return out, nil
}

func (h *service) call(ctx context.Context, fn HandlerFunc, ev *Event) (resp *Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			h.server.log.Error("handler panicked", "event_id", ev.EventID, "panic", p, "stack", string(debug.Stack()))
			err = panicError{p}
		}
	}()
	return fn(ctx, ev)
}

func (h *service) logFailure(msg *eventsv1.EventMessage, st *status.Status) {
	level := slog.LevelWarn
	if st.Code() == codes.Internal || st.Code() == codes.Unknown {
		level = slog.LevelError
	}
	h.server.log.Log(context.Background(), level, "handler failed",
		"event_id", msg.GetEventId(), "event_type", msg.GetEventType(), "code", st.Code().String(), "error", st.Message())
}
