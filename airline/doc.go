// Package airline is the airline vertical: flights, bookings of one seat on
// one flight, the processBooking saga with its compensations, owner
// cancellation with refund, and the authorization rules of the original
// airline booking service (owners read their own bookings, Admin reads and
// manages everything, API keys read flights).
//
// The processBooking saga keeps the original state names:
//
//	Reserve Flight → Reserve Booking → Collect Payment → Confirm Booking → Notify Booking Confirmed
//	compensation: Refund Payment → Cancel Booking → Release Flight Seat → Notify Booking Failed
//
// See docs/processBooking.md for the state diagram.
package airline
