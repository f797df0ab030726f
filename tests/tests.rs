mod d3pm;
