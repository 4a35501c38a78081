package graphql

import (
	"context"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/graphql/internal/generated"
)

func (r queryResolver) GetFlight(ctx context.Context, id string) (*berth.Flight, error) {
	return r.air.GetFlight(ctx, id)
}

func (r queryResolver) ListFlights(ctx context.Context, filter *generated.ModelFlightFilterInput, limit *int, nextToken *string) (*generated.ModelFlightConnection, error) {
	f, err := flightFilter(filter)
	if err != nil {
		return nil, err
	}
	items, next, err := r.air.ListFlights(ctx, f, airline.PageRequest{Limit: limit, NextToken: nextToken})
	if err != nil {
		return nil, err
	}
	return flightPage(items, next), nil
}

func (r queryResolver) GetFlightBySchedule(ctx context.Context, departureAirportCode *string, key *generated.ModelFlightByDepartureScheduleCompositeKeyConditionInput,
	sortDirection *generated.ModelSortDirection, filter *generated.ModelFlightFilterInput, limit *int, nextToken *string) (*generated.ModelFlightConnection, error) {
	op, keys, err := scheduleKey(key)
	if err != nil {
		return nil, err
	}
	f, err := flightFilter(filter)
	if err != nil {
		return nil, err
	}
	page := airline.PageRequest{Limit: limit, NextToken: nextToken, Desc: deref(sortDirection) == generated.ModelSortDirectionDesc}
	items, next, err := r.air.GetFlightBySchedule(ctx, deref(departureAirportCode), op, keys, f, page)
	if err != nil {
		return nil, err
	}
	return flightPage(items, next), nil
}

func flightPage(items []*berth.Flight, next *string) *generated.ModelFlightConnection {
	if items == nil {
		items = []*berth.Flight{}
	}
	return &generated.ModelFlightConnection{Items: items, NextToken: next}
}

func (r mutationResolver) CreateFlight(ctx context.Context, in generated.CreateFlightInput) (*berth.Flight, error) {
	f := &berth.Flight{
		Resource: berth.Resource{
			ID:        deref(in.ID),
			Capacity:  deref(in.SeatAllocation),
			Available: in.SeatCapacity,
			Price:     int64(in.TicketPrice),
			Currency:  in.TicketCurrency,
		},
		FlightNumber:         in.FlightNumber,
		DepartureDate:        in.DepartureDate,
		DepartureAirportCode: in.DepartureAirportCode,
		DepartureAirportName: in.DepartureAirportName,
		DepartureCity:        in.DepartureCity,
		DepartureLocale:      in.DepartureLocale,
		ArrivalDate:          in.ArrivalDate,
		ArrivalAirportCode:   in.ArrivalAirportCode,
		ArrivalAirportName:   in.ArrivalAirportName,
		ArrivalCity:          in.ArrivalCity,
		ArrivalLocale:        in.ArrivalLocale,
	}
	return r.air.CreateFlight(ctx, f)
}

func (r mutationResolver) UpdateFlight(ctx context.Context, in generated.UpdateFlightInput) (*berth.Flight, error) {
	p := airline.FlightPatch{
		DepartureDate:        in.DepartureDate,
		DepartureAirportCode: in.DepartureAirportCode,
		DepartureAirportName: in.DepartureAirportName,
		DepartureCity:        in.DepartureCity,
		DepartureLocale:      in.DepartureLocale,
		ArrivalDate:          in.ArrivalDate,
		ArrivalAirportCode:   in.ArrivalAirportCode,
		ArrivalAirportName:   in.ArrivalAirportName,
		ArrivalCity:          in.ArrivalCity,
		ArrivalLocale:        in.ArrivalLocale,
		TicketCurrency:       in.TicketCurrency,
		FlightNumber:         in.FlightNumber,
		SeatAllocation:       in.SeatAllocation,
	}
	if in.TicketPrice != nil {
		price := int64(*in.TicketPrice)
		p.TicketPrice = &price
	}
	return r.air.UpdateFlight(ctx, in.ID, p)
}

func (r mutationResolver) DeleteFlight(ctx context.Context, in generated.DeleteFlightInput) (*berth.Flight, error) {
	return r.air.DeleteFlight(ctx, in.ID)
}
